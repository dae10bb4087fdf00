#!/usr/bin/env bash
# Runs the server on the embedded SQLite database (./data) with the demo catalog and an admin
# user whose password is printed once. Extra arguments go to `licentia serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --release --bin licentia -- serve --demo "$@"
