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
# The same query API, restaurant and object suites again over a TLS + AUTH redis-server (token
# from Secrets Manager, certificate from a throwaway CA) and over a 3-master Redis Cluster.
for mode in tls cluster; do
    say "cargo test (Redis: $mode)"
    TEST_REDIS_MODE=$mode cargo test -p integration-tests --test suite --locked -- \
        query_api:: restaurants:: objects::
done
