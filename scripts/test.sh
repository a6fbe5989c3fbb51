#!/usr/bin/env bash
# Runs every test. Installs redis-server, PostgreSQL, MariaDB and moto_server (the S3 and
# Secrets Manager emulator) if missing; the tests start their own servers on free loopback
# ports and stop them.
source "$(dirname "$0")/lib.sh"
ensure_packages
ensure_tools "moto_server=moto[server]"
cd "$ROOT"
say "cargo test --workspace"
cargo test --workspace --locked "$@"
