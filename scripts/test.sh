#!/usr/bin/env bash
# Runs every test: unit tests, then the integration suite on SQLite and on PostgreSQL.
# PostgreSQL: TEST_PG_URL if set; else the server at 127.0.0.1:5432 if one answers; else a
# private cluster started here on a free port (installing PostgreSQL if needed) and stopped
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test

# The tests' real SMTP server (aiosmtpd), SOAP clients (zeep, suds), the independent
# protocol verifier's `cryptography`, and schemathesis with jsonschema for the JSON API's
# OpenAPI document, in a virtual environment under target/.
venv=target/test-venv
if [ ! -x "$venv/bin/python" ] \
  || ! "$venv/bin/python" -c "import aiosmtpd, zeep, suds, cryptography, jsonschema" 2>/dev/null \
  || [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==1.4.6" "zeep==4.3.3" \
    "suds==1.2.0" "cryptography==50.0.2" "schemathesis==4.32.5" \
    "hypothesis==6.170.27" "jsonschema==4.26.0"
fi
export TEST_PYTHON="$PWD/$venv/bin/python"

# The portal's browser tests: playwright-core (it drives Debian's Chromium, /usr/bin/chromium;
# it never downloads a browser) and axe-core, and node-soap for the SOAP client tests, from
# tests/browser/package-lock.json into target/browser/. Screenshots of the portal's pages land
# in target/screenshots/portal/.
browser=target/browser
if ! cmp -s tests/browser/package-lock.json "$browser/package-lock.json" \
  || [ ! -d "$browser/node_modules/playwright-core" ] || [ ! -d "$browser/node_modules/axe-core" ] \
  || [ ! -d "$browser/node_modules/soap" ]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$node_major" -lt 20 ]; then
    echo "playwright-core needs Node.js 20 or later; this machine has $(node --version)" >&2
    exit 1
  fi
  rm -rf "$browser"
  mkdir -p "$browser"
  cp tests/browser/package.json tests/browser/package-lock.json "$browser/"
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
export TEST_BROWSER_MODULES="$PWD/$browser/node_modules"

# The client runtime alone, as a vendor embeds it: nothing of the server may be needed to
# build it, and none of the server's crates may be in its dependency tree.
echo "== the client library alone (default-features = false, features = [\"client\"])"
cargo build --locked --lib --example embed --no-default-features --features client
server_crates=$(cargo tree --locked --no-default-features --features client -e normal --prefix none \
  | grep -E '^(actix-web|actix-http|diesel|r2d2|lettre|cron|minijinja|samael|tokio) ' | sort -u || true)
if [ -n "$server_crates" ]; then
  echo "the client library depends on server crates:" >&2
  echo "$server_crates" >&2
  exit 1
fi

# The dongle bridge (dongle-bridge/, a workspace member) is built on the client library alone
# too: none of the server's crates may be in its tree. Its binary is what the integration
# suite's bridge tests run (target/debug/dongle-bridge).
echo "== the dongle bridge (client library only)"
cargo build --locked -p dongle-bridge
server_crates=$(cargo tree --locked -p dongle-bridge -e normal --prefix none \
  | grep -E '^(actix-web|actix-http|diesel|r2d2|lettre|cron|minijinja|samael|tokio) ' | sort -u || true)
if [ -n "$server_crates" ]; then
  echo "the dongle bridge depends on server crates:" >&2
  echo "$server_crates" >&2
  exit 1
fi

cargo build --tests --examples --locked
echo "== unit tests of the dongle bridge (frames, link, simulator, journal)"
cargo test --locked -p dongle-bridge
echo "== unit tests and integration suite on SQLite"
TEST_BACKEND=sqlite cargo test --locked

pg_dir=""
cleanup() {
  if [ -n "$pg_dir" ]; then
    pg_ctl_as stop -D "$pg_dir/data" -m fast >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
}
trap cleanup EXIT

pg_ctl_as() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$bin/pg_ctl" "$@"; else "$bin/pg_ctl" "$@"; fi
}

pg_answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

if [ -z "${TEST_PG_URL:-}" ]; then
  if [ -z "${PRIVATE_PG:-}" ] && pg_answers 127.0.0.1 5432; then
    export TEST_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
  else
    echo "== no PostgreSQL at 127.0.0.1:5432: starting a private cluster"
    scripts/install-deps.sh --postgres
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [ -n "$bin" ] || { echo "PostgreSQL binaries not found under /usr/lib/postgresql after install" >&2; exit 1; }
    port=""
    for p in $(seq 55432 55999); do
      if ! pg_answers 127.0.0.1 "$p"; then port=$p; break; fi
    done
    [ -n "$port" ] || { echo "no free port for PostgreSQL" >&2; exit 1; }
    pg_dir=$(mktemp -d /tmp/licentia-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres "$pg_dir"
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u postgres -- "$bin/initdb" -D "$pg_dir/data" -U postgres -A trust >/dev/null
    else
      "$bin/initdb" -D "$pg_dir/data" -U postgres -A trust >/dev/null
    fi
    pg_ctl_as start -D "$pg_dir/data" -w -l "$pg_dir/log" -o "-p $port -k $pg_dir -h 127.0.0.1 -c fsync=on" >/dev/null
    export TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  fi
fi
echo "== integration suite on PostgreSQL ($TEST_PG_URL)"
TEST_BACKEND=postgres cargo test --locked --test it
