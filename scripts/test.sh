#!/usr/bin/env bash
# Runs the whole test suite: installs the Python peers (localstripe, Stripe's SDK) into .venv,
# Stripe's Node SDK into the sandbox crate's tests/node and Playwright's core package into
# tests/browser (Chromium itself comes from Debian's packages), runs every test of the workspace on
# SQLite (the #[ignore]d ones that need those peers included), then the service's integration
# tests again on PostgreSQL (a database of their own per test) when a server answers at
# TMT_TEST_POSTGRES_URL. With CI=true, a missing peer fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/peers/requirements.txt

# Stripe's Node SDK, pinned by the committed package-lock.json; skipped when already installed.
node_peer=crates/stripe-sandbox/tests/node
if command -v npm >/dev/null; then
  if ! (cd "$node_peer" && node -e 'const p = require("./package.json"), m = require("./node_modules/stripe/package.json"); process.exit(m.version === p.dependencies.stripe ? 0 : 1)') 2>/dev/null; then
    (cd "$node_peer" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # Playwright's core package (it downloads no browser) for the pages' test in Chromium.
  browser_tests=tests/browser
  if ! (cd "$browser_tests" && node -e 'const p = require("./package.json"), m = require("./node_modules/playwright-core/package.json"); process.exit(m.version === p.dependencies["playwright-core"] ? 0 : 1)') 2>/dev/null; then
    (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
  fi
else
  echo "npm not found: the Node SDK and browser tests will fail (install nodejs and npm)" >&2
fi
command -v chromium >/dev/null ||
  echo "chromium not found: the browser test will fail (apt-get install chromium chromium-driver)" >&2

export TMT_TEST_POSTGRES_URL=${TMT_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}

echo "== test suite on SQLite (the whole workspace, peer tests included)"
cargo test --workspace --all-targets "$@" -- --include-ignored

pg_host_port=$(python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.hostname, p.port or 5432)' "$TMT_TEST_POSTGRES_URL")
if (exec 3<>"/dev/tcp/${pg_host_port% *}/${pg_host_port#* }") 2>/dev/null; then
  echo "== integration tests on PostgreSQL"
  # Each test creates a database of its own; clear the ones earlier runs left behind.
  if command -v psql >/dev/null; then
    for db in $(psql "$TMT_TEST_POSTGRES_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'tmt_test_%'" 2>/dev/null); do
      psql "$TMT_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
  fi
  TMT_TEST_BACKEND=postgres cargo test --tests "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required under CI=true and does not answer at $TMT_TEST_POSTGRES_URL" >&2
  exit 1
else
  echo "SKIPPED: the PostgreSQL pass (no server at $TMT_TEST_POSTGRES_URL)"
fi
