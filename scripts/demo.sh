#!/usr/bin/env bash
# Set up s5geo and run the main job, `s5geo demo`, on the sample data shipped in s5geo/sample_data.
# Arguments go to `s5geo demo` (e.g. --output DIR, --force).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/s5geo demo "$@"
