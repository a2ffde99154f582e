#!/usr/bin/env bash
# Quick start (a): install what the app needs into .venv and serve the dashboard on
# http://127.0.0.1:8501 with the bundled sample data (loaded into an empty database on first start).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/streamlit run app.py --server.address 127.0.0.1 --server.port "${PORT:-8501}"
