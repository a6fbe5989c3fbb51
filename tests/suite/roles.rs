//! Least privilege in the database: the ingester creates a reading and a writing role from
//! their secrets (moto); the query API, logged in as them, answers every catalog query and
//! stores a review, and its logins can change nothing else.

use lambda_http::http::StatusCode;
use serde_json::{json, Value};
use test_support::{MariaDb, Moto, Postgres, RedisServer};

use crate::secrets::secrets_client;
use crate::support::{app, call, clients, get_query, pairs, request, seeded_database, sql, unique};

/// A role's secret as the template generates it: `{"username", "password"}`.
pub async fn role_secret(username: &str, password: &str) -> String {
    let id = unique("role-secret-");
    secrets_client()
        .await
        .create_secret()
        .name(&id)
        .secret_string(json!({"username": username, "password": password}).to_string())
        .send()
        .await
        .unwrap();
    id
}

/// The SQLSTATE / MySQL error code of running `statement` as the login of `url`.
async fn refused_code(url: &str, statement: &str) -> String {
    let error = if url.starts_with("postgres") {
        let mut conn: sqlx::PgConnection = sqlx::Connection::connect(url).await.unwrap();
        sqlx::Executor::execute(&mut conn, statement).await.unwrap_err()
    } else {
        let mut conn: sqlx::MySqlConnection = sqlx::Connection::connect(url).await.unwrap();
        sqlx::Executor::execute(&mut conn, statement).await.unwrap_err()
    };
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| format!("not a database error: {error}"))
}

#[tokio::test]
async fn the_query_api_reads_and_writes_as_roles_that_can_do_nothing_else() {
    let redis = RedisServer::start();
    let (name, _) = seeded_database();
    sql(
        &name,
        "CREATE TABLE articles (objectid int PRIMARY KEY, sentence text, title text, source text);
         INSERT INTO articles VALUES (1, 'delta of the river', 't', 's');",
    );
    // PostgreSQL: an administrator like RDS's master user, which is no superuser: it may
    // create roles and grant what it was granted.
    let pg_admin = unique("pgadm");
    sql(
        &name,
        &format!(
            "CREATE ROLE {pg_admin} LOGIN PASSWORD 'admin-pass-1' CREATEROLE;
             GRANT USAGE ON SCHEMA public TO {pg_admin} WITH GRANT OPTION;
             GRANT ALL ON ALL TABLES IN SCHEMA public TO {pg_admin} WITH GRANT OPTION;
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {pg_admin} WITH GRANT OPTION;
             GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {pg_admin} WITH GRANT OPTION;"
        ),
    );
    let admin_url = format!(
        "postgres://{pg_admin}:admin-pass-1@127.0.0.1:{}/{name}",
        Postgres::shared().port()
    );
    // MariaDB: an administrator like RDS's master user (it may create users and grant).
    let maria = MariaDb::shared();
    let articles_db = unique("rolesdb");
    maria.create_database(&articles_db);
    let admin = unique("adm");
    maria
        .root_sql(&format!(
            "CREATE USER '{admin}'@'%' IDENTIFIED BY 'admin-pass-1';
             GRANT ALL ON `{articles_db}`.* TO '{admin}'@'%' WITH GRANT OPTION;
             GRANT CREATE USER ON *.* TO '{admin}'@'%'; GRANT SELECT ON mysql.user TO '{admin}'@'%';
             CREATE TABLE `{articles_db}`.articles (objectid int PRIMARY KEY, sentence text, title text, source text);
             INSERT INTO `{articles_db}`.articles VALUES (1, 'delta of the river', 't', 's');"
        ))
        .unwrap();
    let maria_url = |user: &str, password: &str| {
        format!(
            "mysql://{user}:{password}@127.0.0.1:{}/{articles_db}",
            maria.port()
        )
    };

    // RDS's replication role: its master may grant it, never the attribute itself.
    sql(
        &name,
        &format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication') \
             THEN CREATE ROLE rds_replication NOLOGIN; END IF; END $$; \
             GRANT rds_replication TO {pg_admin} WITH ADMIN OPTION;"
        ),
    );
    let (reader, writer, watcher) = (unique("rd"), unique("wr"), unique("iv"));
    let (read_pw, write_pw) = ("read-Pass-0123456789", "write-Pass-0123456789");
    let mut vars = Moto::shared().env();
    vars.push(("DB_QUERY_ROLE_SECRET_ID", role_secret(&reader, read_pw).await));
    vars.push(("DB_WRITE_ROLE_SECRET_ID", role_secret(&writer, write_pw).await));
    vars.push((
        "DB_INVALIDATOR_ROLE_SECRET_ID",
        role_secret(&watcher, "watch-Pass-0123456789").await,
    ));
    vars.push(("DATABASE_URL_ARTICLES", maria_url(&admin, "admin-pass-1")));
    let ingester = ingester::Ingester::new(clients(&redis.url(), &admin_url, &pairs(&vars)).await);
    let first = ingester.handle(json!({"roles": true})).await.unwrap();
    assert_eq!(first["roles"]["main"]["read"]["created"], true, "{first}");
    let read_tables = first["roles"]["main"]["read"]["tables"].clone();
    for table in ["products", "restaurants", "reviews", "articles"] {
        assert!(read_tables.as_array().unwrap().contains(&json!(table)), "{first}");
    }
    assert_eq!(
        first["roles"]["articles"]["read"]["tables"],
        json!(["articles"]),
        "{first}"
    );
    assert_eq!(first["roles"]["main"]["invalidate"]["created"], true, "{first}");
    let member = sql(
        &name,
        &format!("SELECT pg_has_role('{watcher}', 'rds_replication', 'MEMBER')"),
    );
    assert!(
        member.split_whitespace().any(|w| w == "t"),
        "the invalidator's role holds rds_replication: {member}"
    );
    let again = ingester.handle(json!({"roles": true})).await.unwrap();
    assert_eq!(
        again["roles"]["main"]["read"]["created"], false,
        "idempotent: {again}"
    );

    // The query API, logged in as the roles.
    let port = Postgres::shared().port();
    let read_url = format!("postgres://{reader}:{read_pw}@127.0.0.1:{port}/{name}");
    let write_url = format!("postgres://{writer}:{write_pw}@127.0.0.1:{port}/{name}");
    let maria_read = maria_url(&reader, read_pw);
    let api = app(
        &redis.url(),
        &read_url,
        &[
            ("DATABASE_WRITE_URL", write_url.as_str()),
            ("DATABASE_URL_ARTICLES", maria_read.as_str()),
        ],
    )
    .await;
    for (query, params) in [
        ("product", vec![("id", "1")]),
        ("products_by_category", vec![("category", "tools")]),
        ("category_summary", vec![]),
        ("article_search_pg", vec![("term", "delta")]),
        ("article_search", vec![("term", "delta")]),
        ("restaurant_summary", vec![("name", "Saffron")]),
    ] {
        let reply = call(&api, get_query(query, &params)).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
    }
    let may_call: String = sql(
        &name,
        &format!("SELECT has_function_privilege('{reader}', 'slow_version()', 'EXECUTE')"),
    );
    assert_eq!(may_call, "t", "the slow query's function");
    let posted = call(
        &api,
        crate::restaurants::post_review(
            "Saffron",
            r#"{"author": "role", "rating": 4, "body": "least privilege"}"#,
        ),
    )
    .await;
    assert_eq!(posted.status, StatusCode::CREATED, "{}", posted.text);
    let summary = call(&api, request("GET", "/restaurants/Saffron/summary", &[], &[])).await;
    assert_eq!(
        summary.body["restaurant"]["latest_reviews"][0]["body"],
        Value::from("least privilege")
    );

    // What the logins cannot do: 42501 is PostgreSQL's insufficient_privilege, 1142 MySQL's
    // "command denied".
    for (login, statement) in [
        (&read_url, "DROP TABLE products"),
        (&read_url, "UPDATE products SET stock = 0"),
        (
            &read_url,
            "INSERT INTO reviews (restaurant_id, author, rating, body) VALUES (1, 'x', 1, 'x')",
        ),
        (&write_url, "UPDATE products SET stock = 0"),
        (&write_url, "DELETE FROM reviews"),
        (&write_url, "UPDATE reviews SET body = 'changed'"),
    ] {
        assert_eq!(refused_code(login, statement).await, "42501", "{statement}");
    }
    assert_eq!(
        refused_code(&maria_read, "DELETE FROM articles").await,
        "42000",
        "MariaDB"
    );
}
