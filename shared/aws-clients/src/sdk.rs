//! Shared SDK configuration: rustls on ring (no aws-lc build), bounded timeouts.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// What the service's configuration says about AWS. In Lambda these come from the process
/// environment like everything else; tests pass them explicitly instead of mutating it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_ENDPOINT_URL`: an emulator's endpoint (S3 then uses path-style addressing).
    pub endpoint_url: Option<String>,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION`; `us-east-1` when neither is set.
    pub region: Option<String>,
    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), when given.
    pub static_credentials: Option<(String, String, Option<String>)>,
}

impl std::fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSettings")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field(
                "static_credentials",
                &self.static_credentials.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Loads the SDK configuration with our HTTP client and timeouts: connect 2 s, each attempt
/// 5 s, whole operation (retries included) 15 s.
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(15))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .timeout_config(timeouts);
    loader = loader.region(Region::new(
        settings.region.clone().unwrap_or_else(|| "us-east-1".into()),
    ));
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some((key, secret, token)) = &settings.static_credentials {
        let credentials =
            aws_credential_types::Credentials::new(key, secret, token.clone(), None, "environment");
        loader = loader.credentials_provider(credentials);
    }
    loader.load().await
}
