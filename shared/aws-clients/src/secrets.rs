//! Secrets Manager: database credentials in the shape of an RDS-managed secret.

use aws_config::SdkConfig;
use serde::Deserialize;

/// The JSON of an RDS secret (`username`, `password`, `host`, `port`, `dbname`, `engine`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DbSecret {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Host name.
    pub host: String,
    /// Port; the engine's default when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// Database name (RDS writes `dbname`; some secrets use `database`).
    #[serde(default, alias = "database")]
    pub dbname: Option<String>,
    /// `postgres`, `mysql`, `mariadb`, ...
    pub engine: String,
}

impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("engine", &self.engine)
            .finish()
    }
}

/// Why a secret could not be used. Never includes the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager failed or the secret does not exist.
    #[error("cannot read secret {id:?}: {detail}")]
    Fetch {
        /// Secret id.
        id: String,
        /// What the SDK reported.
        detail: String,
    },
    /// The secret is not the expected JSON.
    #[error("secret {id:?} is not an RDS-style JSON secret (username, password, host, port, dbname, engine): {problem}")]
    Shape {
        /// Secret id.
        id: String,
        /// Which field is wrong (serde's message names fields, not values).
        problem: String,
    },
}

/// A Secrets Manager client.
#[derive(Debug, Clone)]
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    /// A client from the shared SDK configuration.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }

    /// The current string value of secret `id`.
    pub async fn string(&self, id: &str) -> Result<String, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError::Fetch {
                id: id.to_owned(),
                detail: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        output
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| SecretError::Shape {
                id: id.to_owned(),
                problem: "it has no string value".into(),
            })
    }

    /// Database credentials from secret `id`.
    pub async fn db_secret(&self, id: &str) -> Result<DbSecret, SecretError> {
        let text = self.string(id).await?;
        serde_json::from_str(&text).map_err(|e| SecretError::Shape {
            id: id.to_owned(),
            problem: shape_problem(&e),
        })
    }
}

/// What is wrong with a secret's JSON, without quoting any of its values.
fn shape_problem(e: &serde_json::Error) -> String {
    match e.classify() {
        // serde names a missing field ("missing field `password`") but would quote values in
        // type errors, so those are summarised.
        serde_json::error::Category::Data if e.to_string().starts_with("missing field") => e
            .to_string()
            .split(" at line")
            .next()
            .unwrap_or_default()
            .to_owned(),
        serde_json::error::Category::Data => "a field has the wrong type".into(),
        _ => "not valid JSON".into(),
    }
}
