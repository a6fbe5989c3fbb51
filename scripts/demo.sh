#!/usr/bin/env bash
# The demo: a 5-second PostgreSQL query served in milliseconds from Redis through the query API
# running under `cargo lambda watch`; objects ingested into S3 and Redis; the MySQL article
# search; the restaurant summary on DynamoDB (write-through, then a stream-driven drop); then
# the latency report (S3 vs Redis vs cache hit, beside a seed-style Python handler). Installs
# what is missing, starts Redis, PostgreSQL, MariaDB and an AWS emulator (S3, Secrets Manager,
# DynamoDB and its streams) on free loopback ports, stops what it started.
source "$(dirname "$0")/lib.sh"
ensure_packages
ensure_wal2json
ensure_tools cargo-lambda "moto_server=moto[server]"
cd "$ROOT"

start_redis
start_postgres
seed_postgres
start_mariadb
start_moto
ddb() { # the local DynamoDB helper, against the emulator
  AWS_ENDPOINT_URL=$MOTO_URL AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    "$TOOLS/bin/python" "$ROOT/scripts/dynamodb_local.py" "$@"
}
ddb create-table demo-restaurants

say "building the functions (first build takes a few minutes)"
cargo build --locked -p query-api -p ingester -p invalidator 2>&1 | grep -E '^(error|warning: unused)' || true

start_functions <<ENV
REDIS_URL=$REDIS_URL
DATABASE_URL=$DATABASE_URL
DATABASE_URL_ARTICLES=$ARTICLES_URL
OBJECTS_BUCKET=demo-objects
RESTAURANTS_TABLE=demo-restaurants
INVALIDATION_SOURCE=logical
INVALIDATOR_DRAIN_SECONDS=8
AWS_ENDPOINT_URL=$MOTO_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
CACHE_NAMESPACE=demo
CACHE_PUBLIC_BYPASS=true
REVIEWS_AUTH=none
RUST_LOG=info
ENV
curl -s "$BASE/health"; echo

call() { # label, path, extra curl args...
  local label=$1 path=$2; shift 2
  local out; out=$(curl -s -o "$WORK_DIR/body" -w '%{http_code} %{time_total}' "$@" "$BASE$path")
  local code=${out% *} seconds=${out#* }
  python3 - "$label" "$code" "$seconds" "$WORK_DIR/body" <<'PY'
import json, sys
label, code, seconds, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
body = json.load(open(path))
if "error" in body:
    print(f"{label:<34} HTTP {code}  error={body['error']['code']}: {body['error']['message']}")
elif "cache" in body:
    ttl = "-" if body["ttl_seconds"] is None else f"{body['ttl_seconds']}s"
    print(f"{label:<34} HTTP {code}  cache={body['cache']:<6} wall={seconds*1000:9.1f} ms  "
          f"server={body['elapsed_ms']:9.3f} ms  ttl={ttl:<5} rows={body['row_count']}")
else:
    print(f"{label:<34} HTTP {code}  {json.dumps(body)}")
PY
}

echo
say "the reference slow query: SELECT slow_version();"
call "GET /queries/slow_version (1st)" /queries/slow_version
call "GET /queries/slow_version (2nd)" /queries/slow_version
call "GET /queries/slow_version (3rd)" /queries/slow_version
call "?source=database" "/queries/slow_version?source=database"
call "DELETE /cache/queries/slow_version" /cache/queries/slow_version -X DELETE
call "GET after DELETE" /queries/slow_version
call "GET again" /queries/slow_version

echo
say "a parameterized query, then bad input"
call "products_by_category tools" "/queries/products_by_category?category=tools&limit=3"
call "products_by_category tools" "/queries/products_by_category?category=tools&limit=3"
call "limit out of range" "/queries/products_by_category?category=tools&limit=500"
call "unknown query" "/queries/nope"

echo
say "cargo lambda invoke with a fixture (API Gateway REST v1 event)"
cargo lambda invoke query-api --data-file events/query-api/v1-get-slow-version.json \
  --invoke-address 127.0.0.1 --invoke-port "$API_PORT" >"$WORK_DIR/invoke.json"
python3 - "$WORK_DIR/invoke.json" <<'PY'
import json, sys
reply = json.load(open(sys.argv[1]))
body = json.loads(reply["body"])
x_cache = (reply.get("headers") or {}).get("x-cache") or (reply.get("multiValueHeaders") or {}).get("x-cache", ["?"])[0]
print(f"{'invoke v1-get-slow-version':<34} HTTP {reply['statusCode']}  cache={body['cache']:<6} "
      f"server={body['elapsed_ms']:9.3f} ms  X-Cache: {x_cache}")
PY

echo
say "ingester: 200 objects into S3 and Redis, 20,000 articles into PostgreSQL and MariaDB"
invoke_ingester() {
  cargo lambda invoke ingester --data-file "$1" --invoke-address 127.0.0.1 --invoke-port "$API_PORT" \
    | python3 -c 'import json,sys; print("  ", json.dumps(json.load(sys.stdin)))'
}
invoke_ingester events/ingester/objects-200.json
invoke_ingester events/ingester/objects-200.json   # a re-run changes nothing
invoke_ingester events/ingester/dataset-articles.json
call "article_search (MariaDB)" "/queries/article_search?term=delta"
call "article_search (MariaDB)" "/queries/article_search?term=delta"
objects() { # label, key
  local out; out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -D "$WORK_DIR/headers" "$BASE/objects/$2")
  printf '%-34s HTTP %s  X-Cache=%-5s wall=%7.1f ms\n' "$1" "${out% *}" \
    "$(grep -i '^x-cache:' "$WORK_DIR/headers" | tr -d '\r' | awk '{print $2}')" "$(python3 -c "print(${out#* }*1000)")"
}
objects "GET /objects/filename1.txt" filename1.txt
objects "GET /objects/nope.txt" nope.txt
objects "GET /objects/nope.txt (negative)" nope.txt

echo
say "the restaurant summary on DynamoDB: seeded by the ingester, cached 900 s, written through"
invoke_ingester events/ingester/dataset-restaurants.json
summary() { # label, restaurant, extra curl args...
  local label=$1 name=$2; shift 2
  local out; out=$(curl -s -o "$WORK_DIR/body" -w '%{http_code} %{time_total}' "$@" \
    "$BASE/restaurants/${name// /%20}/${REVIEW_ROUTE:-summary}")
  python3 - "$label" "${out% *}" "${out#* }" "$WORK_DIR/body" <<'PY'
import json, sys
label, code, seconds, path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
body = json.load(open(path))
if "error" in body:
    print(f"{label:<34} HTTP {code}  error={body['error']['code']}: {body['error']['message']}")
    sys.exit()
r = body.get("restaurant") or body.get("summary")
ttl = body.get("ttl_seconds")
print(f"{label:<34} HTTP {code}  cache={body['cache']:<6} wall={seconds*1000:7.1f} ms  "
      f"ttl={'-' if ttl is None else str(ttl) + 's':<5} reviews={r['review_count']:<3} "
      f"newest={r['latest_reviews'][0]['body']!r}")
PY
}
summary "GET Saffron summary (1st)" Saffron
summary "GET Saffron summary (2nd)" Saffron
summary "GET Juniper summary" Juniper
REVIEW_ROUTE=reviews summary "POST a review (write-through)" Saffron -X POST \
  -H 'content-type: application/json' -H 'idempotency-key: demo-1' \
  -d '{"author": "demo", "rating": 5, "body": "Posted through the API"}'
summary "GET Saffron summary" Saffron
ddb put-review demo-restaurants Saffron "Written straight into the table"
summary "GET after a write outside the API" Saffron
echo "   the stream's record of that write, delivered to the invalidator:"
ddb stream-event demo-restaurants 1 >"$WORK_DIR/stream-event.json"
cargo lambda invoke invalidator --data-file "$WORK_DIR/stream-event.json" \
  --invoke-address 127.0.0.1 --invoke-port "$API_PORT" \
  | python3 -c 'import json,sys; print("  ", json.dumps(json.load(sys.stdin)))'
summary "GET Saffron summary" Saffron
summary "GET Juniper summary (untouched)" Juniper

echo
say "a change made in psql reaches the cache through PostgreSQL's committed change stream"
pg() { psql -X -q -tA -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"; }
echo "   triggers on user tables: $(pg 'SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal')"
drain() { # the scheduled event EventBridge sends each minute; the drain polls every 200 ms
  cargo lambda invoke invalidator --data-file events/invalidator/scheduled-drain.json \
    --invoke-address 127.0.0.1 --invoke-port "$API_PORT" >"$WORK_DIR/drain.json"
}
report_drain() { # label
  python3 - "$1" "$WORK_DIR/drain.json" <<'PY'
import json, sys
d = next(r for r in json.load(open(sys.argv[2]))["drained"] if r["source"] == "slot")
print(f"   {sys.argv[1]}: slot created {d['slot_created']}x, {d['transactions']} transaction(s), "
      f"{d['bumps']} scope(s) dropped, last LSN {d['last_lsn']}, {d['polls']} polls, stopped: {d['stopped']}")
PY
}
drain   # the first one creates the slot (and drops every cached query once)
report_drain "first drain"
call "product id=3" "/queries/product?id=3"
call "product id=3" "/queries/product?id=3"
drain & DRAIN_PID=$!
sleep 1
pg "UPDATE products SET name = 'Renamed in psql' WHERE id = 3"
python3 - "$BASE/queries/product?id=3" <<'PY'
import json, sys, time, urllib.request
committed = time.monotonic()
while time.monotonic() - committed < 5:
    body = json.load(urllib.request.urlopen(sys.argv[1]))
    if body["rows"][0]["name"] == "Renamed in psql":
        print(f"{'first fresh read after the commit':<34} {(time.monotonic() - committed) * 1000:7.1f} ms  cache={body['cache']}")
        break
    time.sleep(0.01)
else:
    sys.exit("the change did not reach the cache within 5 s")
PY
wait "$DRAIN_PID"
report_drain "drain"
call "product id=3" "/queries/product?id=3"

echo
say "stopping Redis: reads degrade to the database, they do not fail"
kill -INT "${STARTED_PIDS[0]}"; wait "${STARTED_PIDS[0]}" 2>/dev/null || true
call "product id=7 with Redis down" "/queries/product?id=7"
call "product id=7 with Redis down" "/queries/product?id=7"
echo
say "latency report: S3 vs Redis vs cache hit, query misses vs hits, beside a seed-style Python handler, and the hits again at 128 MB's 1/14 of a core (first build takes a few minutes)"
ensure_python_modules redis pymysql
# --cpu-quota needs root and a cgroup cpu controller; without them the report says so and
# leaves those rows out.
cargo run --locked --quiet --profile bench -p integration-tests --bin bench -- \
  --n 200 --origin-samples 20 --slow-misses 1 --cpu-quota 14 --out "$ROOT/results" \
  --seed-python "$TOOLS/bin/python"

echo
say "done; stopping everything this demo started"
