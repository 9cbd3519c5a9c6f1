#!/usr/bin/env bash
# Runs the whole test suite: installs the Python peers (localstripe, Stripe's SDK) into .venv,
# Stripe's Node SDK into the sandbox crate's tests/node and Playwright's core package into
# tests/browser (Chromium itself comes from Debian's packages), runs every test of the workspace on
# SQLite (the #[ignore]d ones that need a peer included: they fail if it is missing), then the
# service's integration tests (the api crate) again on PostgreSQL, a database of their own per
# test. Off CI, the tests whose peer this machine lacks (a PostgreSQL server at
# TMT_TEST_POSTGRES_URL, root for a tmpfs, PostgreSQL's server binaries, Chromium) are left out,
# and said so; with CI=true nothing is left out.
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

export TMT_TEST_POSTGRES_URL=${TMT_TEST_POSTGRES_URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}

pg_host_port=$(python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p.hostname, p.port or 5432)' "$TMT_TEST_POSTGRES_URL")
postgres_answers=false
if (exec 3<>"/dev/tcp/${pg_host_port% *}/${pg_host_port#* }") 2>/dev/null; then
  postgres_answers=true
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required under CI=true and does not answer at $TMT_TEST_POSTGRES_URL" >&2
  exit 1
fi

# The api crate's tests left out for a peer this machine lacks (off CI only), by name: those
# that need a PostgreSQL server are all named postgres_*.
skip=()
leave_out() {
  skip+=(--skip "$1")
  echo "SKIPPED: $2"
}
if [ "${CI:-}" != "true" ]; then
  if [ "$postgres_answers" != true ]; then
    leave_out postgres "the tests that need PostgreSQL (no server at $TMT_TEST_POSTGRES_URL)"
  fi
  if [ "$(id -u)" != 0 ]; then
    leave_out sqlite_disk_full "the disk-full tests (they mount a tmpfs, which needs root)"
  fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    leave_out outage:: "the outage test (no PostgreSQL server binaries under /usr/lib/postgresql)"
  fi
  if ! command -v chromium >/dev/null; then
    leave_out browser:: "the pages' test in Chromium (apt-get install chromium chromium-driver)"
  fi
fi

echo "== test suite on SQLite (the whole workspace, peer tests included)"
# The api crate apart from the rest, so that the names left out reach no other binary (the
# criterion bench takes no --skip).
cargo test --workspace --exclude tmt-payments --all-targets "$@" -- --include-ignored
cargo test -p tmt-payments --lib --bins --benches "$@" -- --include-ignored
cargo test -p tmt-payments --test api "$@" -- --include-ignored ${skip[@]+"${skip[@]}"}

if [ "$postgres_answers" = true ]; then
  echo "== integration tests on PostgreSQL"
  # Each test creates a database of its own; clear the ones earlier runs left behind.
  if command -v psql >/dev/null; then
    for db in $(psql "$TMT_TEST_POSTGRES_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'tmt_test_%'" 2>/dev/null); do
      psql "$TMT_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
  fi
  # The peer tests (#[ignore]d) ran in the first pass: this one is the backend's.
  TMT_TEST_BACKEND=postgres cargo test -p tmt-payments --test api "$@"
else
  echo "SKIPPED: the PostgreSQL pass (no server at $TMT_TEST_POSTGRES_URL)"
fi
