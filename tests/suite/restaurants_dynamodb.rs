//! The restaurant scenario on DynamoDB (moto): the tutorial's single table, seeded by the
//! ingester, served through the cache, written through on POST, and invalidated by its stream.

use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, StreamSpecification, StreamViewType};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use dynamo_origin::{PARTITION_KEY, SORT_KEY};
use ingester::Ingester;
use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use test_support::{Moto, RedisServer};

use crate::restaurants::{post_review, post_then_read, summary, unknown_restaurants_are_404};
use crate::support::{app, call, clients, seeded_database, unique};

async fn sdk(moto: &Moto) -> aws_clients::SdkConfig {
    let settings = aws_clients::AwsSettings {
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        static_credentials: Some(("test".into(), "test".into(), None)),
    };
    aws_clients::load_sdk_config(&settings).await
}

/// A new table in the template's shape (the key schema of shared/dynamo-origin/key-schema.json,
/// keys-only stream when `stream`); returns its name and stream ARN ("" without a stream). moto
/// copies a table, stream included, on every transaction: tables that take many writes go
/// without one.
async fn create_table(moto: &Moto, stream: bool) -> (String, String) {
    let name = unique("restaurants-");
    let (keys, attributes) = crate::key_schema::key_schema();
    let created = aws_sdk_dynamodb::Client::new(&sdk(moto).await)
        .create_table()
        .table_name(&name)
        .set_key_schema(Some(keys))
        .set_attribute_definitions(Some(attributes))
        .billing_mode(BillingMode::PayPerRequest)
        .set_stream_specification(stream.then(|| {
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::KeysOnly)
                .build()
                .unwrap()
        }))
        .send()
        .await
        .expect("moto creates the table");
    let stream = created
        .table_description()
        .and_then(|d| d.latest_stream_arn())
        .unwrap_or_default()
        .to_owned();
    (name, stream)
}

/// Variables selecting the DynamoDB origin on the emulator.
fn table_env(moto: &Moto, table: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.push(("RESTAURANTS_TABLE".into(), table.to_owned()));
    env
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Seeds `table` through the ingester, as `{"dataset": "restaurants"}` does in AWS.
async fn seed(moto: &Moto, redis_url: &str, db: &str, table: &str) -> Value {
    let env = table_env(moto, table);
    Ingester::new(clients(redis_url, db, &pairs(&env)).await)
        .handle(json!({"dataset": "restaurants"}))
        .await
        .expect("the ingester seeds the table")
}

/// Every stream record written so far, in the Lambda event shape the invalidator receives.
async fn stream_event(moto: &Moto, stream_arn: &str) -> Value {
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk(moto).await);
    let description = streams
        .describe_stream()
        .stream_arn(stream_arn)
        .send()
        .await
        .expect("describe stream");
    let mut records = Vec::new();
    for shard in description
        .stream_description()
        .map(|d| d.shards())
        .unwrap_or_default()
    {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard.shard_id().unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("shard iterator");
        let page = streams
            .get_records()
            .shard_iterator(iterator.shard_iterator().unwrap_or_default())
            .limit(1000)
            .send()
            .await
            .expect("records");
        for record in page.records() {
            let change = record.dynamodb().expect("a change");
            let keys: serde_json::Map<String, Value> = change
                .keys()
                .unwrap_or(&Default::default())
                .iter()
                .map(|(k, v)| (k.clone(), json!({"S": v.as_s().cloned().unwrap_or_default()})))
                .collect();
            records.push(json!({
                "eventID": record.event_id(),
                "eventName": record.event_name().map(|n| n.as_str()),
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
                "dynamodb": {
                    "Keys": keys,
                    "SequenceNumber": change.sequence_number(),
                    "SizeBytes": change.size_bytes().unwrap_or(1),
                    "StreamViewType": "KEYS_ONLY",
                },
            }));
        }
    }
    json!({ "Records": records })
}

/// Redis, a seeded SQL database (the functions require one) and a seeded table on `moto`.
struct Scenario<'m> {
    moto: &'m Moto,
    redis: RedisServer,
    db: String,
    table: String,
    stream_arn: String,
}

impl<'m> Scenario<'m> {
    async fn start(moto: &'m Moto, stream: bool) -> Scenario<'m> {
        let redis = RedisServer::start();
        let (_, db) = seeded_database();
        let (table, stream_arn) = create_table(moto, stream).await;
        let seeded = seed(moto, &redis.url(), &db, &table).await;
        assert_eq!(
            (seeded["restaurants"].as_u64(), seeded["reviews"].as_u64()),
            (Some(10), Some(250))
        );
        Self {
            moto,
            redis,
            db,
            table,
            stream_arn,
        }
    }

    /// The query API on this scenario's table.
    async fn app(&self) -> query_api::App {
        self.app_on(&self.table, &[]).await
    }

    /// The query API on `table`, with extra variables.
    async fn app_on(&self, table: &str, extra: &[(&str, &str)]) -> query_api::App {
        let owned = table_env(self.moto, table);
        let mut env = pairs(&owned);
        env.extend_from_slice(extra);
        app(&self.redis.url(), &self.db, &env).await
    }

    /// The query API on a table that does not exist, failing fast.
    async fn app_without_table(&self) -> query_api::App {
        self.app_on(&unique("no-such-table-"), &[("AWS_MAX_ATTEMPTS", "1")])
            .await
    }
}

#[tokio::test]
async fn dynamodb_summaries_hit_and_a_posted_review_is_in_every_one_of_1000_next_reads() {
    // Its own emulator: moto copies the table on every transaction, and 1,000 of them would
    // slow the other tests' S3 and Secrets Manager calls.
    let own = Moto::start();
    let scenario = Scenario::start(&own, false).await;
    let again = seed(&own, &scenario.redis.url(), &scenario.db, &scenario.table).await;
    assert_eq!(again["reviews"], 250, "re-seeding writes the same items");
    let app = scenario.app().await;

    let first = call(&app, summary("Blue Fig")).await;
    assert_eq!(
        (first.status, first.cache()),
        (StatusCode::OK, "miss"),
        "{}",
        first.text
    );
    let restaurant = &first.body["restaurant"];
    assert_eq!(
        restaurant["review_count"], 25,
        "re-seeding recounts, never double counts"
    );
    assert_eq!(restaurant["cuisine"], "mediterranean");
    assert_eq!(
        restaurant["latest_reviews"][0]["body"], "Seed review 250",
        "newest first"
    );
    assert_eq!(restaurant["latest_reviews"].as_array().map(Vec::len), Some(5));
    let hit = call(&app, summary("Blue Fig")).await;
    assert_eq!((hit.cache(), hit.x_cache()), ("hit", "HIT"));
    assert_eq!(hit.body["restaurant"], *restaurant);
    assert_eq!(call(&app, summary("Saffron")).await.cache(), "miss");

    post_then_read(&app, 1000).await;
}

#[tokio::test]
async fn dynamodb_reviews_are_idempotent_validated_and_need_a_restaurant() {
    let scenario = Scenario::start(Moto::shared(), false).await;
    let app = scenario.app().await;

    let keyed = |body: &str| {
        let mut req = post_review("Juniper", body);
        req.headers_mut()
            .insert("idempotency-key", "retry-7".parse().unwrap());
        req
    };
    let first = call(&app, keyed(r#"{"author": "a", "rating": 5, "body": "once"}"#)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let retry = call(&app, keyed(r#"{"author": "a", "rating": 5, "body": "once"}"#)).await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(
        retry.body["review"]["id"], first.body["review"]["id"],
        "the retry returns the first review"
    );
    let juniper = call(&app, summary("Juniper")).await;
    assert_eq!(juniper.body["restaurant"]["review_count"], 26, "stored once");
    let elsewhere = |restaurant: &str, body: &str| {
        let mut req = post_review(restaurant, body);
        req.headers_mut()
            .insert("idempotency-key", "retry-7".parse().unwrap());
        req
    };
    for req in [
        keyed(r#"{"author": "a", "rating": 4, "body": "other"}"#),
        elsewhere("Saffron", r#"{"author": "a", "rating": 5, "body": "once"}"#),
    ] {
        let reused = call(&app, req).await;
        assert_eq!(
            (reused.status, reused.error_code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            "{}",
            reused.text
        );
    }
    let juniper = call(&app, summary("Juniper")).await;
    assert_eq!(
        juniper.body["restaurant"]["review_count"], 26,
        "nothing more stored"
    );

    let bad = call(
        &app,
        post_review("Juniper", r#"{"author": "a", "rating": 9, "body": "b"}"#),
    )
    .await;
    assert_eq!(
        (bad.status, bad.error_code()),
        (StatusCode::BAD_REQUEST, "bad_parameter")
    );
    unknown_restaurants_are_404(&app).await;
    let after = call(&app, summary("Juniper")).await;
    assert_eq!(
        after.body["restaurant"]["review_count"], 26,
        "refused reviews stored nothing"
    );

    let missing_table = scenario.app_without_table().await;
    let down = call(&missing_table, summary("Casa Luna")).await;
    assert_eq!(
        (down.status, down.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "origin_unavailable"),
        "{}",
        down.text
    );
    assert!(
        !down.text.contains("no-such-table"),
        "the answer does not name AWS resources: {}",
        down.text
    );
}

#[tokio::test]
async fn a_stream_event_drops_only_the_changed_restaurants_summary() {
    let moto = Moto::shared();
    let scenario = Scenario::start(moto, true).await;
    let (table, stream_arn) = (&scenario.table, &scenario.stream_arn);
    let clients = clients(
        &scenario.redis.url(),
        &scenario.db,
        &pairs(&table_env(moto, table)),
    )
    .await;
    let app = scenario.app().await;
    for name in ["Saffron", "Olive Tree"] {
        call(&app, summary(name)).await;
        assert_eq!(call(&app, summary(name)).await.cache(), "hit");
    }
    // Seeding's own records only drop summaries nobody had cached yet.
    let seeding = stream_event(moto, stream_arn).await;
    let seeded_records = seeding["Records"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        seeded_records >= 260,
        "moto streams every seeded item: {seeded_records}"
    );

    // A change made outside the API: a review written straight into the table.
    aws_sdk_dynamodb::Client::new(&sdk(moto).await)
        .put_item()
        .table_name(table)
        .item(PARTITION_KEY, AttributeValue::S("RESTAURANT#Saffron".into()))
        .item(
            SORT_KEY,
            AttributeValue::S("REVIEW#2026-12-01T00:00:00.000Z#outside".into()),
        )
        .item("id", AttributeValue::S("outside".into()))
        .item("author", AttributeValue::S("console".into()))
        .item("rating", AttributeValue::N("5".into()))
        .item("body", AttributeValue::S("written outside the API".into()))
        .item("created_at", AttributeValue::S("2026-12-01T00:00:00.000Z".into()))
        .send()
        .await
        .expect("direct write");
    assert_eq!(
        call(&app, summary("Saffron")).await.cache(),
        "hit",
        "the cache does not know yet"
    );

    let mut event = stream_event(moto, stream_arn).await;
    let records = event["Records"].as_array_mut().unwrap();
    let latest = records.split_off(seeded_records);
    assert_eq!(latest.len(), 1, "one record for the direct write");
    *records = latest;
    // A request record of the partition (expired by TTL) changes no summary.
    let mut request_record = records[0].clone();
    request_record["dynamodb"]["Keys"][PARTITION_KEY]["S"] = "RESTAURANT#Olive Tree".into();
    request_record["dynamodb"]["Keys"][SORT_KEY]["S"] = "REQUEST#some-key".into();
    request_record["eventName"] = "REMOVE".into();
    records.push(request_record);

    let reply = invalidator::handle(clients.invalidation(), event).await.unwrap();
    assert_eq!(reply["batchItemFailures"], json!([]), "{reply}");
    let saffron = call(&app, summary("Saffron")).await;
    assert_eq!(saffron.cache(), "miss", "the changed restaurant reloads");
    assert_eq!(
        saffron.body["restaurant"]["latest_reviews"][0]["body"],
        "written outside the API"
    );
    assert_eq!(
        call(&app, summary("Olive Tree")).await.cache(),
        "hit",
        "others keep their summaries"
    );
}

#[tokio::test]
async fn a_stream_batch_that_cannot_reach_redis_reports_its_first_record() {
    let mut redis = RedisServer::start();
    let (_, db) = seeded_database();
    let clients = clients(&redis.url(), &db, &[]).await;
    redis.stop();
    let record = |sequence: &str, name: &str| {
        json!({
            "eventID": sequence, "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {
                "Keys": {
                    PARTITION_KEY: {"S": format!("RESTAURANT#{name}")},
                    SORT_KEY: {"S": "REVIEW#x#y"}
                },
                "SequenceNumber": sequence, "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"
            }
        })
    };
    let event = json!({"Records": [record("100", "Saffron"), record("200", "Juniper")]});
    let reply = invalidator::handle(clients.invalidation(), event.clone())
        .await
        .unwrap();
    assert_eq!(
        reply["batchItemFailures"],
        json!([{"itemIdentifier": "100"}]),
        "{reply}"
    );
    // The same batch delivered inside an SQS message (a stream piped through a queue), beside
    // the test event S3 sends when a notification is set up: the stream message is retried,
    // the test event is not a failure.
    let message = |id: &str, body: &serde_json::Value| {
        json!({"messageId": id, "receiptHandle": "r", "body": body.to_string(), "attributes": {},
               "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
               "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"})
    };
    let s3_test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-06T00:00:00Z",
                         "Bucket": "b", "RequestId": "r", "HostId": "h"});
    let queued = json!({"Records": [message("m-stream", &event), message("m-test", &s3_test)]});
    let reply = invalidator::handle(clients.invalidation(), queued).await.unwrap();
    assert_eq!(
        reply["batchItemFailures"],
        json!([{"itemIdentifier": "m-stream"}]),
        "{reply}"
    );
}

#[tokio::test]
async fn a_cold_dynamodb_summary_under_concurrent_reads_is_loaded_once() {
    let scenario = Scenario::start(Moto::shared(), false).await;
    let app = scenario.app().await;
    let replies = futures::future::join_all((0..40).map(|_| call(&app, summary("Umami House")))).await;
    assert!(
        replies.iter().all(|r| r.status == StatusCode::OK),
        "every reader is answered"
    );
    let states: Vec<&str> = replies.iter().map(|r| r.cache()).collect();
    // A miss is a load; the others waited for it and read what it stored.
    let misses = states.iter().filter(|s| **s == "miss").count();
    assert_eq!(
        misses, 1,
        "one DynamoDB load for 40 concurrent cold reads: {states:?}"
    );
    assert!(states.iter().all(|s| *s == "miss" || *s == "hit"), "{states:?}");
}

#[tokio::test]
async fn health_reports_the_restaurant_table() {
    let scenario = Scenario::start(Moto::shared(), false).await;
    let up = scenario.app().await;
    let health = call(&up, crate::support::request("GET", "/cache/health", &[], &[])).await;
    assert_eq!(
        (
            health.body["status"].as_str(),
            health.body["restaurant_table"]["ok"].as_bool()
        ),
        (Some("ok"), Some(true)),
        "{}",
        health.text
    );
    let missing = scenario.app_without_table().await;
    let health = call(
        &missing,
        crate::support::request("GET", "/cache/health", &[], &[]),
    )
    .await;
    assert_eq!(
        (
            health.body["status"].as_str(),
            health.body["restaurant_table"]["ok"].as_bool()
        ),
        (Some("degraded"), Some(false)),
        "{}",
        health.text
    );
    assert!(
        !health.text.contains("no-such-table"),
        "no resource names: {}",
        health.text
    );
}
