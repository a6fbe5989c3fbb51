# Shared helpers for demo.sh and test.sh: install what is missing, start local services on
# free loopback ports, and stop exactly what was started (by PID) on exit.
# Sourced, not run.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=${CACHE_ASIDE_TOOLS:-$HOME/.cache/cache-aside-tools}
export PATH="$TOOLS/bin:$HOME/.cargo/bin:$PATH" SAM_CLI_TELEMETRY=0
STARTED_PIDS=()
WORK_DIR=$(mktemp -d /tmp/cache-aside.XXXXXX)
chmod 755 "$WORK_DIR"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    # INT is PostgreSQL's fast shutdown, TERM is MariaDB's; each ignores or outranks the other.
    # Signal the whole process group when we made one (cargo lambda watch spawns children).
    for sig in INT TERM; do
      kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null || true
    done
  done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: redis-server, PostgreSQL (server + psql), MariaDB, curl.
ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  { command -v psql >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
  { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } || missing+=(mariadb-server)
  command -v curl >/dev/null || missing+=(curl)
  command -v openssl >/dev/null || missing+=(openssl)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  local i
  for i in 1 2 3 4 5; do as_root apt-get update -qq && break; sleep 5; done
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# wal2json for the server's major version: the logical source's preferred output plugin (RDS
# has it). Optional: without it, slots decode with test_decoding, which ships with the server.
ensure_wal2json() {
  ls /usr/lib/postgresql/*/lib/wal2json.so >/dev/null 2>&1 && return 0
  local major; major=$(ls /usr/lib/postgresql | sort -V | tail -1)
  say "installing postgresql-$major-wal2json (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$major-wal2json" >/dev/null \
    || { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$major-wal2json" >/dev/null; } \
    || say "wal2json unavailable; logical slots will use test_decoding"
}

# Headless Chromium (Debian's package) for the browser test; sets BROWSER_BIN.
ensure_browser() {
  BROWSER_BIN=$(command -v chromium || true)
  if [ -z "$BROWSER_BIN" ]; then
    say "installing chromium (apt)"
    local i
    for i in 1 2 3 4 5; do as_root apt-get update -qq && break; sleep 5; done
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    BROWSER_BIN=$(command -v chromium)
  fi
}

# Python tools in a private venv, given as binary=pip-package (or just the name when equal):
# cargo-lambda (+ zig), cfn-lint, moto_server='moto[server]'.
ensure_tools() {
  local spec missing=()
  for spec in "$@"; do [ -x "$TOOLS/bin/${spec%%=*}" ] || missing+=("${spec#*=}"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} into $TOOLS (pip)"
  [ -x "$TOOLS/bin/pip" ] || python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
}

# Python libraries in the same venv, given as module=pip-package (or just the name when equal).
ensure_python_modules() {
  local spec missing=()
  [ -x "$TOOLS/bin/pip" ] || python3 -m venv "$TOOLS"
  for spec in "$@"; do "$TOOLS/bin/python" -c "import ${spec%%=*}" 2>/dev/null || missing+=("${spec#*=}"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} into $TOOLS (pip)"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "${missing[@]}"
}

# A tool whose pinned dependencies clash with the others (checkov, aws-sam-cli) gets a venv of
# its own under $TOOLS/venvs; its command is linked into $TOOLS/bin. Usage: binary pip-package.
ensure_isolated_tool() {
  local bin=$1 package=$2 venv="$TOOLS/venvs/$1"
  [ -x "$TOOLS/bin/$bin" ] && return 0
  say "installing $package into $venv (pip)"
  mkdir -p "$TOOLS/bin"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$package"
  ln -sf "$venv/bin/$bin" "$TOOLS/bin/$bin"
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

wait_until() { # seconds description command...
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not become ready within ${seconds}s"
    sleep 0.2
  done
}

# Sets REDIS_PORT and REDIS_URL.
start_redis() {
  REDIS_PORT=$(free_port)
  mkdir -p "$WORK_DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$WORK_DIR/redis" --logfile "$WORK_DIR/redis/log" &
  STARTED_PIDS+=($!)
  wait_until 10 "redis-server" redis-cli -p "$REDIS_PORT" ping
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  say "redis-server ready on 127.0.0.1:$REDIS_PORT"
}

# Sets PG_PORT and DATABASE_URL (password generated per run, never written to the repo).
start_postgres() {
  local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  local dir="$WORK_DIR/pg" user=()
  PG_PORT=$(free_port)
  PG_PASSWORD=$(python3 -c 'import secrets;print(secrets.token_hex(16))')
  mkdir -p "$dir" && chmod 700 "$dir"
  printf '%s\n' "$PG_PASSWORD" > "$dir/pw"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$dir"; user=(runuser -u postgres --); fi
  "${user[@]}" "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pw" --auth=scram-sha-256 \
    -E UTF8 --no-sync >/dev/null
  rm -f "$dir/pw"
  # setsid + exec: the recorded PID is the postmaster itself (runuser execs nothing else).
  setsid "${user[@]}" "$bin/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off \
    -c wal_level=logical -c max_replication_slots=10 >"$dir/log" 2>&1 &
  STARTED_PIDS+=($!)
  export PGPASSWORD=$PG_PASSWORD
  wait_until 30 "PostgreSQL" psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'select 1'
  DATABASE_URL="postgres://postgres:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres"
  say "PostgreSQL ready on 127.0.0.1:$PG_PORT"
}

# Sets MARIA_PORT and ARTICLES_URL (database `articles`, user `app`).
start_mariadb() {
  local dir="$WORK_DIR/maria" pw
  MARIA_PORT=$(free_port)
  pw=$(python3 -c 'import secrets;print(secrets.token_hex(16))')
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown mysql:mysql "$dir"
  mariadb-install-db --no-defaults --user=mysql --datadir="$dir/data" \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null
  mariadbd --no-defaults --user=mysql --datadir="$dir/data" --port="$MARIA_PORT" --socket="$dir/sock" \
    --pid-file="$dir/pid" --bind-address=127.0.0.1 --skip-name-resolve --skip-log-bin \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 >"$dir/log" 2>&1 &
  STARTED_PIDS+=($!)
  wait_until 30 "MariaDB" mariadb --no-defaults --socket="$dir/sock" -uroot -e 'select 1'
  mariadb --no-defaults --socket="$dir/sock" -uroot -e \
    "CREATE DATABASE articles; CREATE USER 'app'@'%' IDENTIFIED BY '$pw'; GRANT ALL ON articles.* TO 'app'@'%';"
  ARTICLES_URL="mysql://app:$pw@127.0.0.1:$MARIA_PORT/articles"
  say "MariaDB ready on 127.0.0.1:$MARIA_PORT"
}

# Sets MOTO_URL (S3 + Secrets Manager emulator).
start_moto() {
  local port; port=$(free_port)
  moto_server -H 127.0.0.1 -p "$port" >"$WORK_DIR/moto.log" 2>&1 &
  STARTED_PIDS+=($!)
  MOTO_URL="http://127.0.0.1:$port"
  wait_until 30 "moto_server" curl -sf "$MOTO_URL/moto-api/"
  say "moto_server (S3, Secrets Manager) ready on 127.0.0.1:$port"
}

# Runs the functions under `cargo lambda watch` with the variables given as NAME=value lines
# on stdin (kept in a 0600 file, never on a command line); sets API_PORT and BASE (the query
# API's URL) and waits until it answers.
start_functions() {
  API_PORT=$(free_port)
  local env_file="$WORK_DIR/function.env"
  ( umask 077; cat > "$env_file" )
  say "starting cargo lambda watch on 127.0.0.1:$API_PORT"
  setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$API_PORT" \
    --env-file "$env_file" --ignore-changes >"$WORK_DIR/watch.log" 2>&1 &
  STARTED_PIDS+=($!)
  BASE="http://127.0.0.1:$API_PORT/lambda-url/query-api"
  wait_until 600 "cargo lambda watch (see $WORK_DIR/watch.log)" curl -sf "$BASE/health"
}

seed_postgres() {
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -f "$ROOT/shared/query-catalog/sql/postgres-seed.sql" >/dev/null
  say "schema and seed loaded (slow_version(), products)"
}
