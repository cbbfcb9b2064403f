#!/usr/bin/env bash
# Install the app into .venv (first run only) and serve the page and API on the committed model.
#   ./scripts/serve.sh                    -> http://127.0.0.1:8000
#   ./scripts/serve.sh --host 0.0.0.0     (extra arguments go to uvicorn)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/uvicorn server:app "$@"
