#!/usr/bin/env bash
# The report test renders pages in a real headless Chromium: install Debian's chromium
# when it is missing and allowed (root or password-less sudo), else say what to run.
set -u
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null && exit 0; done
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
if [ "$SUDO" != none ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium (Debian package chromium) for the report test..."
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; }
fi
command -v chromium >/dev/null && exit 0
echo "Chromium is missing (the browser test will be skipped): sudo apt-get install chromium" >&2
exit 1
