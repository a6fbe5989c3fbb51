//! Database credentials from Secrets Manager (moto), and a rotated password picked up without a
//! restart.

use std::time::Duration;

use lambda_http::http::StatusCode;
use serde_json::json;
use test_support::{MariaDb, Moto, RedisServer};

use crate::support::{app, call, clients, config, get_query, pairs, seeded_database, unique};

pub(crate) async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    let moto = Moto::shared();
    let settings = aws_clients::AwsSettings {
        endpoint_url: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        static_credentials: Some(("test".into(), "test".into(), None)),
    };
    aws_sdk_secretsmanager::Client::new(&aws_clients::load_sdk_config(&settings).await)
}

fn rds_secret(user: &str, password: &str, db: &str) -> String {
    json!({"username": user, "password": password, "engine": "mariadb", "host": "127.0.0.1",
           "port": MariaDb::shared().port(), "dbname": db})
    .to_string()
}

#[tokio::test]
async fn credentials_come_from_the_secret_and_a_rotated_password_is_picked_up() {
    let redis = RedisServer::start();
    let (_, pg) = seeded_database();
    let maria = MariaDb::shared();
    let db = unique("secretdb");
    let user = unique("rot");
    maria.create_database(&db);
    maria
        .root_sql(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'first-pass-1'; GRANT ALL ON `{db}`.* TO '{user}'@'%';"
        ))
        .unwrap();
    let secret_id = unique("rds-secret-");
    let sm = secrets_client().await;
    sm.create_secret()
        .name(&secret_id)
        .secret_string(rds_secret(&user, "first-pass-1", &db))
        .send()
        .await
        .unwrap();

    let mut vars = Moto::shared().env();
    vars.push(("DB_SECRET_ID_ARTICLES", secret_id.clone()));
    // A secret means RDS: TLS verified against the RDS CA unless told otherwise, so the local
    // plain-text MariaDB is refused rather than used without encryption.
    let secure_default = ingester::Ingester::new(clients(&redis.url(), &pg, &pairs(&vars)).await);
    let refused = secure_default
        .handle(json!({"dataset": "articles", "rows": 10, "databases": ["articles"]}))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("TLS"), "{refused}");
    vars.push(("DB_SSL_MODE", "disable".into()));
    let extra = pairs(&vars);
    let ingester = ingester::Ingester::new(clients(&redis.url(), &pg, &extra).await);
    ingester
        .handle(json!({"dataset": "articles", "rows": 300, "databases": ["articles"]}))
        .await
        .unwrap();
    let mut with_bypass = extra.clone();
    with_bypass.push(crate::support::PUBLIC_BYPASS);
    let app = app(&redis.url(), &pg, &with_bypass).await;
    let before = call(&app, get_query("article_search", &[("source", "database")])).await;
    assert_eq!(
        (before.status, before.body["row_count"].as_u64()),
        (StatusCode::OK, Some(9)),
        "{}",
        before.text
    );

    // Rotate: new password in the database and in the secret; cut the pooled connections.
    maria
        .root_sql(&format!("ALTER USER '{user}'@'%' IDENTIFIED BY 'second-pass-2'"))
        .unwrap();
    sm.put_secret_value()
        .secret_id(&secret_id)
        .secret_string(rds_secret(&user, "second-pass-2", &db))
        .send()
        .await
        .unwrap();
    let ids = maria
        .root_sql(&format!(
            "SELECT id FROM information_schema.processlist WHERE user = '{user}'"
        ))
        .unwrap();
    for id in ids.lines().filter(|l| !l.is_empty()) {
        let _ = maria.root_sql(&format!("KILL {id}"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let after = call(&app, get_query("article_search", &[("source", "database")])).await;
    assert_eq!(
        (after.status, after.body["row_count"].as_u64()),
        (StatusCode::OK, Some(9)),
        "{}",
        after.text
    );
    for reply in [&before, &after] {
        assert!(!reply.text.contains("pass-"), "no password in responses");
    }
}

#[tokio::test]
async fn a_missing_or_malformed_secret_stops_start_up_with_a_clear_message() {
    let redis = RedisServer::start();
    let (_, pg) = seeded_database();
    let sm = secrets_client().await;
    let malformed = unique("bad-secret-");
    sm.create_secret()
        .name(&malformed)
        .secret_string(
            json!({"username": "u", "engine": "mysql", "host": "h", "pw": "hunter2-secret"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    for (id, expected) in [
        (unique("absent-"), "cannot read secret"),
        (malformed, "missing field `password`"),
    ] {
        let mut vars = Moto::shared().env();
        vars.push(("DB_SECRET_ID_ARTICLES", id.clone()));
        let e = use_cases::Clients::build(&config(&redis.url(), &pg, &pairs(&vars)))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(expected) && e.contains(&id) && e.contains("\"articles\""),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }
}
