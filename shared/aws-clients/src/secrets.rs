//! Secrets Manager: database credentials in the shape of an RDS-managed secret.

use aws_config::SdkConfig;
use serde::Deserialize;

/// The JSON of an RDS secret (`username`, `password`, `host`, `port`, `dbname`, `engine`).
///
/// Secrets that RDS manages itself (`ManageMasterUserPassword`) hold only `username` and
/// `password`; the caller supplies the rest from configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DbSecret {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Host name.
    #[serde(default)]
    pub host: Option<String>,
    /// Port; the engine's default when absent.
    #[serde(default)]
    pub port: Option<u16>,
    /// Database name (RDS writes `dbname`; some secrets use `database`).
    #[serde(default, alias = "database")]
    pub dbname: Option<String>,
    /// `postgres`, `mysql`, `mariadb`, ...
    #[serde(default)]
    pub engine: Option<String>,
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
    #[error("secret {id:?} has the wrong shape: {problem}")]
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

    /// The Redis AUTH token in secret `id`: the whole string, or the `token` (also `password`,
    /// `authToken`) field of a JSON object.
    pub async fn redis_auth_token(&self, id: &str) -> Result<String, SecretError> {
        let text = self.string(id).await?;
        auth_token(&text).ok_or_else(|| SecretError::Shape {
            id: id.to_owned(),
            problem: "expected a token string or a JSON object with a non-empty `token` field".into(),
        })
    }

    /// Database credentials from secret `id`.
    pub async fn db_secret(&self, id: &str) -> Result<DbSecret, SecretError> {
        let text = self.string(id).await?;
        serde_json::from_str(&text).map_err(|e| SecretError::Shape {
            id: id.to_owned(),
            problem: format!(
                "expected RDS-style JSON (username, password, host, port, dbname, engine): {}",
                shape_problem(&e)
            ),
        })
    }
}

/// The token in a secret's text (see [`Secrets::redis_auth_token`]).
fn auth_token(text: &str) -> Option<String> {
    let token = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(fields)) => ["token", "password", "authToken"]
            .iter()
            .find_map(|name| fields.get(*name).and_then(|v| v.as_str()))?
            .to_owned(),
        _ => text.trim().to_owned(),
    };
    (!token.is_empty()).then_some(token)
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

#[cfg(test)]
mod tests {
    use super::auth_token;

    #[test]
    fn auth_tokens_come_from_plain_or_json_secrets() {
        assert_eq!(auth_token(" abc \n").as_deref(), Some("abc"));
        assert_eq!(
            auth_token(r#"{"username":"default","token":"t0k"}"#).as_deref(),
            Some("t0k")
        );
        assert_eq!(auth_token(r#"{"password":"p"}"#).as_deref(), Some("p"));
        assert_eq!(auth_token(r#"{"user":"x"}"#), None);
        assert_eq!(auth_token("  "), None);
    }
}
