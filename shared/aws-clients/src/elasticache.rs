//! IAM authentication to ElastiCache (Valkey, or Redis OSS 7+): the password of an IAM-enabled
//! ElastiCache user is a SigV4-presigned `connect` request, valid for 15 minutes.

use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// How long ElastiCache accepts a token after it was signed.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Characters SigV4 leaves unencoded in a query (RFC 3986 unreserved).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Why no token could be made. Never carries a key.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The SDK found no credentials (no role, no environment variables).
    #[error("no AWS credentials for ElastiCache IAM authentication: {0}")]
    Credentials(String),
    /// The request could not be signed (an invalid cache name or user).
    #[error("cannot sign the ElastiCache connect request: {0}")]
    Sign(String),
}

/// Which cache and user a token is for. ElastiCache stores cache names and user IDs in lower
/// case (an IAM user's name is its ID), so tokens are signed for, and connections authenticate
/// as, the lower-case forms whatever case they were given in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The IAM-enabled ElastiCache user's ID (it must equal its user name).
    pub user: String,
    /// The replication group ID or serverless cache name, lower case.
    pub cache_name: String,
    /// A serverless cache (the request then names `ResourceType=ServerlessCache`).
    pub serverless: bool,
    /// The cache's region.
    pub region: String,
}

/// Makes IAM tokens for one cache and user from the function's own credentials (its role in
/// Lambda). Built once per instance; asked for a token whenever a connection opens.
#[derive(Debug, Clone)]
pub struct ElastiCacheIam {
    request: ConnectRequest,
    credentials: SharedCredentialsProvider,
}

impl ElastiCacheIam {
    /// Uses the SDK configuration's credentials and region.
    pub fn new(sdk: &SdkConfig, user: &str, cache_name: &str, serverless: bool) -> Result<Self, TokenError> {
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| TokenError::Credentials("no credentials provider configured".into()))?;
        let region = sdk
            .region()
            .map_or_else(|| "us-east-1".to_owned(), |r| r.to_string());
        Ok(Self {
            request: ConnectRequest {
                user: user.to_ascii_lowercase(),
                cache_name: cache_name.to_ascii_lowercase(),
                serverless,
                region,
            },
            credentials,
        })
    }

    /// The user the tokens authenticate.
    pub fn user(&self) -> &str {
        &self.request.user
    }

    /// A token signed now. Credentials come from the SDK's cache, so this is cheap when they
    /// are still valid.
    pub async fn token(&self) -> Result<String, TokenError> {
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| TokenError::Credentials(e.to_string()))?;
        connect_token(&self.request, &credentials, SystemTime::now())
    }
}

/// The token for `request`, signed with `credentials` at `time`: the presigned URL
/// `<cache_name>/?Action=connect&User=…&X-Amz-…` without its scheme.
pub fn connect_token(
    request: &ConnectRequest,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, TokenError> {
    let user = request.user.to_ascii_lowercase();
    let cache_name = request.cache_name.to_ascii_lowercase();
    let mut query = format!("Action=connect&User={}", utf8_percent_encode(&user, QUERY_VALUE));
    if request.serverless {
        query.push_str("&ResourceType=ServerlessCache");
    }
    let signing = presign(
        &cache_name,
        &format!("/?{query}"),
        "elasticache",
        &request.region,
        credentials,
        time,
        TOKEN_LIFETIME,
    )?;
    Ok(format!("{cache_name}/?{query}&{signing}"))
}

/// SigV4 query-string presigning of `GET http://<host><path_and_query>` (already encoded):
/// returns the `X-Amz-*` parameters to append, encoded, in the order the signer gives them.
pub fn presign(
    host: &str,
    path_and_query: &str,
    service: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
    expires_in: Duration,
) -> Result<String, TokenError> {
    let sign_error = |e: &dyn std::fmt::Display| TokenError::Sign(e.to_string());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires_in);
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| sign_error(&e))?
        .into();
    let url = format!("http://{host}{path_and_query}");
    let signable = SignableRequest::new("GET", url, [("host", host)].into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| sign_error(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| sign_error(&e))?.into_parts();
    let (_headers, params) = instructions.into_parts();
    Ok(params
        .iter()
        .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
        .collect::<Vec<_>>()
        .join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_credentials(session_token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn signature_of(query: &str) -> &str {
        query
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Signature="))
            .expect("a signature parameter")
    }

    /// Query-signature cases of AWS's published SigV4 test suite (`aws-signing-test-suite/v4`).
    #[test]
    fn presigning_matches_the_aws_sigv4_test_suite() {
        let cases = [
            ("/", None, "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"),
            (
                "/?Param2=value2&Param1=value1",
                None,
                "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5",
            ),
            (
                "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                None,
                "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf",
            ),
            (
                "/?%E1%88%B4=bar",
                None,
                "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600",
            ),
            (
                "/",
                Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
                "7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c",
            ),
        ];
        for (path, token, expected) in cases {
            let query = presign(
                "example.amazonaws.com",
                path,
                "service",
                "us-east-1",
                &suite_credentials(token),
                suite_time(),
                Duration::from_secs(3600),
            )
            .unwrap();
            assert_eq!(
                signature_of(&query),
                expected,
                "{path} (session token: {})",
                token.is_some()
            );
            assert!(query
                .contains("X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request"));
        }
    }

    #[test]
    fn a_connect_token_names_the_cache_user_and_lifetime() {
        let request = ConnectRequest {
            user: "app-user".into(),
            cache_name: "my-cache".into(),
            serverless: true,
            region: "eu-west-1".into(),
        };
        let token = connect_token(&request, &suite_credentials(Some("session")), suite_time()).unwrap();
        assert!(token.starts_with("my-cache/?Action=connect&User=app-user&ResourceType=ServerlessCache&"));
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Feu-west-1%2Felasticache%2Faws4_request",
            "X-Amz-Date=20150830T123600Z",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Security-Token=session",
        ] {
            assert!(token.contains(part), "{part} missing from {token}");
        }
        assert!(!token.contains("wJalrXUtnFEMI"), "the secret key never appears");
        // A replication group's token does not name a resource type; the signature differs.
        let group = ConnectRequest {
            serverless: false,
            ..request.clone()
        };
        let other = connect_token(&group, &suite_credentials(Some("session")), suite_time()).unwrap();
        assert!(!other.contains("ResourceType"));
        assert_ne!(signature_of(&token), signature_of(&other));
    }

    #[test]
    fn names_are_signed_as_elasticache_stores_them_in_lower_case() {
        let lower = ConnectRequest {
            user: "ca-1c2fa620982a-app".into(),
            cache_name: "cacheaside-redis".into(),
            serverless: false,
            region: "eu-west-1".into(),
        };
        let mixed = ConnectRequest {
            user: "CA-1c2fa620982a-App".into(),
            cache_name: "CacheAside-Redis".into(),
            ..lower.clone()
        };
        let keys = suite_credentials(Some("session"));
        let token = connect_token(&mixed, &keys, suite_time()).unwrap();
        assert_eq!(token, connect_token(&lower, &keys, suite_time()).unwrap());
        assert!(token.starts_with("cacheaside-redis/?Action=connect&User=ca-1c2fa620982a-app&"));
    }
}
