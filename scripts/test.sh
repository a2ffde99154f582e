#!/usr/bin/env bash
# Quick start (b): install everything the tests need (Python packages into .venv, Debian's
# chromium for the browser tests when it is not there yet) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
# Debian's chromium for the browser tests, and CJK + emoji fonts so Chinese pages render as text.
need=""
[ -x /usr/bin/chromium ] || need="chromium"
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need="$need fonts-noto-cjk"
fc-list 2>/dev/null | grep -qi "Noto Color Emoji" || need="$need fonts-noto-color-emoji"
if [ -n "$need" ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
