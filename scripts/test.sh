#!/usr/bin/env bash
# Runs every test. Installs redis-server and PostgreSQL if missing; the tests start their own
# servers on free loopback ports and stop them.
source "$(dirname "$0")/lib.sh"
ensure_packages
cd "$ROOT"
say "cargo test --workspace"
cargo test --workspace --locked "$@"
