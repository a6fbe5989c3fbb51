#!/usr/bin/env bash
# The demo pages in a real browser: starts Redis and PostgreSQL, the query API under
# `cargo lambda watch`, and headless Chromium, then drives the pages (tests/browser/pages.py).
# Screenshots go to results/. Stops everything it started.
source "$(dirname "$0")/../../scripts/lib.sh"
ensure_packages
ensure_browser
ensure_tools cargo-lambda
ensure_python_modules "websocket=websocket-client"
cd "$ROOT"

start_redis
start_postgres
seed_postgres
psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c \
  "UPDATE products SET name = '<img src=x onerror=\"window.__pwned=true\">' WHERE id = 5"

start_functions <<ENV
REDIS_URL=$REDIS_URL
DATABASE_URL=$DATABASE_URL
CACHE_NAMESPACE=pages
CACHE_PUBLIC_BYPASS=true
RUST_LOG="warn,query_api=debug"
ENV

DEVTOOLS_PORT=$(free_port)
setsid "$BROWSER_BIN" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
  --remote-debugging-address=127.0.0.1 --remote-debugging-port="$DEVTOOLS_PORT" \
  --user-data-dir="$WORK_DIR/chromium" about:blank >"$WORK_DIR/chromium.log" 2>&1 &
STARTED_PIDS+=($!)
mkdir -p "$ROOT/results"
say "driving headless Chromium through the demo pages"
"$TOOLS/bin/python" "$ROOT/tests/browser/pages.py" "$DEVTOOLS_PORT" "$BASE" "$ROOT/results"
