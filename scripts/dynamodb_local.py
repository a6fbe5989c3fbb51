"""The DynamoDB side of the local demo, against moto_server (AWS_ENDPOINT_URL):

  create-table NAME             the restaurants table as template.yaml declares it
  put-review NAME RESTAURANT T  a review (and its counters) written straight into the table,
                                outside the API
  stream-event NAME N           the stream's last N records as the Lambda event the
                                invalidator receives from its event source mapping
"""
import json
import sys
from pathlib import Path

import boto3

# The table's key schema has one definition, shared with the Rust crate (dynamo_origin::KEY_SCHEMA)
# and checked against template.yaml by the integration suite.
KEY_SCHEMA = json.loads(
    (Path(__file__).resolve().parent.parent / "shared/dynamo-origin/key-schema.json").read_text()
)
PK = next(k["AttributeName"] for k in KEY_SCHEMA["KeySchema"] if k["KeyType"] == "HASH")
SK = next(k["AttributeName"] for k in KEY_SCHEMA["KeySchema"] if k["KeyType"] == "RANGE")


def client(service):
    return boto3.client(service)


def create_table(name):
    ddb = client("dynamodb")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=KEY_SCHEMA["AttributeDefinitions"],
        KeySchema=KEY_SCHEMA["KeySchema"],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
    )
    print(f"   table {name} created ({PK}/{SK}, keys-only stream)")


def put_review(name, restaurant, text):
    stamp = "2026-12-31T23:59:59.000Z"
    key = {PK: {"S": f"RESTAURANT#{restaurant}"}}
    client("dynamodb").transact_write_items(TransactItems=[
        {"Update": {
            "TableName": name,
            "Key": {**key, SK: {"S": "RESTAURANT"}},
            "UpdateExpression": "ADD review_count :one, rating_sum :rating",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":rating": {"N": "5"}},
        }},
        {"Put": {"TableName": name, "Item": {
            **key,
            SK: {"S": f"REVIEW#{stamp}#console"},
            "id": {"S": "console"},
            "author": {"S": "console"},
            "rating": {"N": "5"},
            "body": {"S": text},
            "created_at": {"S": stamp},
        }}},
    ])


def stream_event(name, last):
    arn = client("dynamodb").describe_table(TableName=name)["Table"]["LatestStreamArn"]
    streams = client("dynamodbstreams")
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += page["Records"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    event = []
    for record in records[-last:]:
        change = record["dynamodb"]
        event.append({
            "eventID": record["eventID"],
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": record.get("awsRegion", "us-east-1"),
            "eventSourceARN": arn,
            "dynamodb": {
                "Keys": change["Keys"],
                "SequenceNumber": change["SequenceNumber"],
                "SizeBytes": change.get("SizeBytes", 1),
                "StreamViewType": "KEYS_ONLY",
            },
        })
    print(json.dumps({"Records": event}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "create-table":
        create_table(*args)
    elif command == "put-review":
        put_review(*args)
    elif command == "stream-event":
        stream_event(args[0], int(args[1]))
    else:
        sys.exit(__doc__)
