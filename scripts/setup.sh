#!/usr/bin/env bash
# Set up s5geo on a fresh machine. Idempotent: reuses .venv (and .venv-qgis) when they are up to date.
#
#   scripts/setup.sh          .venv with s5geo, torch, TorchGeo and the test tools
#   scripts/setup.sh --qgis   also Debian's QGIS 3.22 and .venv-qgis (Debian Python, no torch) for the plugin
set -euo pipefail
cd "$(dirname "$0")/.."

with_qgis=0
[ "${1:-}" = "--qgis" ] && with_qgis=1
python=${PYTHON:-python3}
fingerprint=$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)

if [ ! -f ".venv/.s5geo-$fingerprint" ]; then
  echo "setup: installing s5geo into .venv (torch 2.14.1 comes from this machine's disk)"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: an unpinned torch would pull a multi-GB download.
  .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q -e '.[onnx,parquet,test,weights,corpus]'
  rm -f .venv/.s5geo-*
  touch ".venv/.s5geo-$fingerprint"
fi

if [ "$with_qgis" = 1 ]; then
  if ! command -v qgis_process >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import qgis.core' 2>/dev/null; then
    echo "setup: installing QGIS from Debian"
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends \
      python3-qgis qgis-providers qgis python3-venv python3-pip >/dev/null
  fi
  if [ ! -f ".venv-qgis/.s5geo-$fingerprint" ]; then
    echo "setup: creating .venv-qgis (Debian Python with QGIS, numpy < 2, onnxruntime, no torch)"
    [ -x .venv-qgis/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv-qgis
    .venv-qgis/bin/python -m pip install -q --upgrade pip
    .venv-qgis/bin/python -m pip install -q 'numpy<2' onnxruntime 'pytest>=7' 'pytest-qgis>=2'
    rm -f .venv-qgis/.s5geo-*
    touch ".venv-qgis/.s5geo-$fingerprint"
  fi
fi
