#!/usr/bin/env bash
# Runs the whole test suite: installs the Python peers (localstripe, Stripe's SDK) into .venv,
# then runs every Rust test. With CI=true, tests whose peer is missing fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/peers/requirements.txt

cargo test --all-targets "$@"
