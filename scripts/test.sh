#!/usr/bin/env bash
# Set up everything (venvs, Debian QGIS) and run every test: the main suite, then the QGIS plugin suite.
# Extra arguments go to the main pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --qgis

.venv/bin/ruff check s5geo tests benchmarks scripts qgis_plugin
.venv/bin/bandit -q -ll -r qgis_plugin/s5geo_qgis qgis_plugin/build.py   # no medium/high findings
.venv/bin/python -m pytest tests "$@"
if [ -d qgis_plugin/tests ]; then
  QT_QPA_PLATFORM=offscreen .venv-qgis/bin/python -m pytest -p no:cacheprovider qgis_plugin/tests
fi
