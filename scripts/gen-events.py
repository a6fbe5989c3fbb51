#!/usr/bin/env python3
"""Writes the JSON fixtures under events/ (run again after changing routes)."""
import json
import pathlib
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent / "events"
HEADERS = {"accept": "application/json", "host": "localhost", "user-agent": "curl/8.0"}


def v2(method, path, query=None, headers=None):
    """API Gateway HTTP API / Function URL (payload format 2.0)."""
    query = query or {}
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urllib.parse.urlencode(query),
        "headers": {**HEADERS, **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "curl/8.0"},
            "requestId": "fixture-v2",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795435200000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    return event


def with_body(event, body):
    """A JSON request body, as API Gateway passes it."""
    event["headers"]["content-type"] = "application/json"
    event["body"] = json.dumps(body)
    return event


def v1(method, path, resource, path_params=None, query=None, headers=None, stage="Prod"):
    """API Gateway REST API (payload format 1.0), deployed under a stage."""
    hdrs = {**HEADERS, **(headers or {})}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_params,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourceId": "fixture",
            "stage": stage,
            "requestId": "fixture-v1",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "curl/8.0"},
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 1795435200000,
        },
        "body": None,
        "isBase64Encoded": False,
    }


def s3_event(name, key):
    """An S3 notification (key URL-encoded, + for spaces, as S3 sends it)."""
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-23T12:00:00.000Z", "eventName": name,
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "1", "x-amz-id-2": "2"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "invalidate",
               "bucket": {"name": "demo-objects", "ownerIdentity": {"principalId": "EXAMPLE"},
                          "arn": "arn:aws:s3:::demo-objects"},
               "object": {"key": key, "size": 300, "eTag": "0", "sequencer": "0"}}}]}


def sqs_batch(messages):
    """An SQS batch of invalidation messages."""
    return {"Records": [{
        "messageId": mid, "receiptHandle": "r-" + mid, "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795435200000",
                       "SenderId": "EXAMPLE", "ApproximateFirstReceiveTimestamp": "1795435200000"},
        "messageAttributes": {}, "md5OfBody": "0", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:invalidations", "awsRegion": "us-east-1",
    } for mid, body in messages]}


PRODUCTS = {"category": "tools", "limit": "5"}
QUERY_API = {
    "v2-health": v2("GET", "/health"),
    "v2-list-queries": v2("GET", "/queries"),
    "v2-get-slow-version": v2("GET", "/queries/slow_version"),
    "v2-get-products": v2("GET", "/queries/products_by_category", PRODUCTS),
    "v2-get-products-source-database": v2("GET", "/queries/products_by_category",
                                          {**PRODUCTS, "source": "database"}),
    "v2-get-products-no-cache": v2("GET", "/queries/products_by_category", PRODUCTS,
                                   {"cache-control": "no-cache"}),
    "v2-get-category-summary": v2("GET", "/queries/category_summary"),
    "v2-delete-cache-products": v2("DELETE", "/cache/queries/products_by_category"),
    "v2-delete-cache-slow-version": v2("DELETE", "/cache/queries/slow_version"),
    "v2-bad-param-out-of-range": v2("GET", "/queries/products_by_category",
                                    {"category": "tools", "limit": "500"}),
    "v2-bad-param-wrong-type": v2("GET", "/queries/product", {"id": "abc"}),
    "v2-bad-param-missing": v2("GET", "/queries/products_by_category"),
    "v2-unknown-query": v2("GET", "/queries/no_such_query"),
    "v2-wrong-method": v2("POST", "/queries/slow_version"),
    "v2-get-article-search": v2("GET", "/queries/article_search", {"term": "delta"}),
    "v2-get-object": v2("GET", "/objects/filename1.txt"),
    "v2-get-object-missing": v2("GET", "/objects/no-such-object.txt"),
    "v2-bad-object-key": v2("GET", "/objects/a//b.txt"),
    "v2-get-restaurant-summary": v2("GET", "/restaurants/Blue%20Fig/summary"),
    "v2-post-review": with_body(v2("POST", "/restaurants/Blue%20Fig/reviews"),
                                {"author": "Ana", "rating": 5, "body": "Lovely figs."}),
    "v2-bad-review": with_body(v2("POST", "/restaurants/Blue%20Fig/reviews"),
                               {"author": "Ana", "rating": 9, "body": "Too good."}),
    "v2-delete-cache-tag-products": v2("DELETE", "/cache/tags/products"),
    "v1-health": v1("GET", "/health", "/health"),
    "v1-list-queries": v1("GET", "/queries", "/queries"),
    "v1-get-slow-version": v1("GET", "/queries/slow_version", "/queries/{name}",
                              {"name": "slow_version"}),
    "v1-get-products": v1("GET", "/queries/products_by_category", "/queries/{name}",
                          {"name": "products_by_category"}, PRODUCTS),
    "v1-delete-cache-products": v1("DELETE", "/cache/queries/products_by_category",
                                   "/cache/queries/{name}", {"name": "products_by_category"}),
    "v1-get-article-search": v1("GET", "/queries/article_search", "/queries/{name}",
                                {"name": "article_search"}, {"term": "delta"}),
    "v1-get-object": v1("GET", "/objects/filename1.txt", "/objects/{key+}", {"key": "filename1.txt"}),
    "v1-wrong-method": v1("PUT", "/queries/slow_version", "/queries/{name}",
                          {"name": "slow_version"}),
}
OTHERS = {
    "ingester/warm": {"warm": ["slow_version", "category_summary"]},
    "ingester/objects-200": {"objects": {"count": 200, "min_bytes": 200, "max_bytes": 400,
                                         "prefix": "filename"}},
    "ingester/objects-10000": {"objects": {"count": 10000, "min_bytes": 200, "max_bytes": 400,
                                           "prefix": "filename"}},
    "ingester/dataset-articles": {"dataset": "articles"},
    "ingester/dataset-articles-mysql": {"dataset": "articles", "rows": 20000,
                                        "databases": ["articles"]},
    "ingester/bad-payload": {"objects": "two hundred"},
    "ingester/bad-two-kinds": {"warm": ["slow_version"], "dataset": "articles"},
    "invalidator/direct-queries": {"queries": ["products_by_category", "product"]},
    "invalidator/direct-tags": {"tags": ["products"]},
    "invalidator/bad-payload": {"table": 42},
    "invalidator/db-change-products": {"table": "products", "operation": "UPDATE", "keys": {"id": "3"}},
    "invalidator/s3-object-created": s3_event("ObjectCreated:Put", "docs/a+b%2Bc.txt"),
    "invalidator/s3-object-removed": s3_event("ObjectRemoved:Delete", "filename1.txt"),
    "invalidator/sqs-batch": sqs_batch([
        ("msg-change", json.dumps({"table": "products", "operation": "INSERT", "keys": {"id": "61"}})),
        ("msg-broken", "{not json"),
        ("msg-direct", json.dumps({"queries": ["slow_version"]})),
    ]),
    # What the EventBridge rule (rate(1 minute)) sends: it starts a drain of committed changes.
    "invalidator/scheduled-drain": {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-06T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/cache-aside-drain-changes"],
        "detail": {},
    },
}

for name, event in QUERY_API.items():
    path = ROOT / "query-api" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, indent=2) + "\n")
for name, event in OTHERS.items():
    path = ROOT / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(event, indent=2) + "\n")
print(f"wrote {len(QUERY_API) + len(OTHERS)} fixtures under {ROOT}")
