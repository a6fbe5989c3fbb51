"""A seed-style Python handler for the article search, timed for the latency report.

It does what the AWS database-caching demo's handler does, so its server time can stand beside
ours: the SQL text is the cache key, a hit is `GET` + `json.loads`, a miss is a PyMySQL query
whose rows are stored with `SETEX` as JSON, and the response body is `json.dumps` of the rows.
Connections are opened once, outside the handler, as a warm Lambda instance would hold them.

    python seed_handler.py --redis-url redis://127.0.0.1:P --mysql-url mysql://u:p@127.0.0.1:P/db \
        --hits 500 --misses 10

Prints one JSON object: {"article_search miss": [µs, ...], "article_search hit": [µs, ...]}.
Needs the `redis` and `pymysql` packages.
"""

import argparse
import json
import time
from urllib.parse import unquote, urlparse

import pymysql
import redis

SQL = (
    "select objectid, sentence, title, source from articles "
    "where sentence like '%delta%' order by objectid limit 500"
)
TTL_SECONDS = 60


def connect(args):
    mysql = urlparse(args.mysql_url)
    db = pymysql.connect(
        host=mysql.hostname,
        port=mysql.port or 3306,
        user=unquote(mysql.username or ""),
        password=unquote(mysql.password or ""),
        database=mysql.path.lstrip("/"),
        cursorclass=pymysql.cursors.DictCursor,
        connect_timeout=5,
        read_timeout=30,
    )
    cache = redis.Redis.from_url(args.redis_url, socket_timeout=5)
    return db, cache


def make_handler(db, cache):
    def handler(event, context):
        cached = cache.get(SQL)
        if cached is not None:
            rows, source = json.loads(cached), "cache"
        else:
            with db.cursor() as cursor:
                cursor.execute(SQL)
                rows = cursor.fetchall()
            cache.setex(SQL, TTL_SECONDS, json.dumps(rows, default=str))
            source = "database"
        return {"statusCode": 200, "body": json.dumps({"source": source, "records": rows}, default=str)}

    return handler


def timed(handler, count, before=None):
    micros = []
    for _ in range(count):
        if before:
            before()
        started = time.perf_counter()
        handler({}, None)
        micros.append(int((time.perf_counter() - started) * 1_000_000))
    return micros


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--mysql-url", required=True)
    parser.add_argument("--hits", type=int, default=500)
    parser.add_argument("--misses", type=int, default=10)
    args = parser.parse_args()

    db, cache = connect(args)
    handler = make_handler(db, cache)
    try:
        misses = timed(handler, args.misses, before=lambda: cache.delete(SQL))
        hits = timed(handler, args.hits)
    finally:
        cache.delete(SQL)
        db.close()
    print(json.dumps({"article_search miss": misses, "article_search hit": hits}))


if __name__ == "__main__":
    main()
