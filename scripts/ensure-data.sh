#!/usr/bin/env bash
# Make sure Fashion-MNIST is on this machine: install Debian's dataset-fashion-mnist when
# allowed (root or password-less sudo), else say exactly what to do.
set -u
PY=${PY:-.venv/bin/python}
if "$PY" -m scalelab data check fashion-mnist >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
if [ "$SUDO" != none ] && command -v apt-get >/dev/null; then
  echo "Installing Fashion-MNIST (Debian package dataset-fashion-mnist)..."
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }
fi
if "$PY" -m scalelab data check fashion-mnist; then exit 0; fi
echo "Fashion-MNIST is missing. Get it with one of:" >&2
echo "  sudo apt-get install dataset-fashion-mnist" >&2
echo "  $PY -m scalelab data fetch fashion-mnist        (needs the internet)" >&2
echo "  or point SCALELAB_DATA at a folder with the four IDX files" >&2
exit 1
