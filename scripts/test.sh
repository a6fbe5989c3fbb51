#!/usr/bin/env bash
# Runs every test. Installs redis-server, PostgreSQL, MariaDB, moto_server (the S3 and
# Secrets Manager emulator) and the template checker's Python libraries if missing; the tests
# start their own servers on free loopback ports and stop them.
source "$(dirname "$0")/lib.sh"
ensure_packages
ensure_wal2json
ensure_tools "moto_server=moto[server]" cfn-lint openapi-spec-validator
ensure_python_modules "samtranslator=aws-sam-translator"
cd "$ROOT"
say "template security properties (tests/template_security.py)"
"$TOOLS/bin/python" tests/template_security.py
say "template rendered for every mode and odd stack names, against the resource schemas (tests/template_render.py)"
"$TOOLS/bin/python" tests/template_render.py
say "OpenAPI description (openapi-spec-validator)"
openapi-spec-validator functions/query-api/openapi.json
say "cargo test --workspace"
cargo test --workspace --locked "$@"
# The cache-aside crate on its own: its example caches an HTTP origin under a tagged key and
# exits non-zero unless the origin was called once for the miss, not for the hit, and again
# after the tag's invalidation.
say "cache-aside example (examples/http_cache.rs) against its own redis-server"
start_redis
cargo run -q -p cache-aside --example http_cache --locked -- "$REDIS_URL"
# The same query API, restaurant, object and change-stream suites again over a TLS + AUTH
# redis-server (token from Secrets Manager, certificate from a throwaway CA), a 3-master Redis
# Cluster (the drains' lease scripts keep their keys in one slot) and ElastiCache Serverless's shape.
for mode in tls cluster serverless; do
    say "cargo test (Redis: $mode)"
    TEST_REDIS_MODE=$mode cargo test -p integration-tests --test suite --locked -- \
        query_api:: restaurants:: objects:: changes::
done
# The demo pages in headless Chromium, against the query API under `cargo lambda watch`.
say "demo pages in headless Chromium (tests/browser/run.sh)"
bash "$ROOT/tests/browser/run.sh"
