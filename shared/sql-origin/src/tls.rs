//! TLS to the databases: which mode, and which CAs to trust.
//!
//! RDS server certificates chain to Amazon's RDS CAs, which no public root store holds, so the
//! RDS CA bundle ships inside the binary (`certs/rds-ca-bundle.pem`; `scripts/refresh-rds-ca.sh`
//! refreshes it). Verifying against it defeats a man in the middle inside the VPC.

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The Amazon RDS root CAs (all regions), PEM.
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-ca-bundle.pem");

/// How much TLS a connection insists on (libpq's `sslmode` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbTlsMode {
    /// Plain text only.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS always, certificate unverified.
    Require,
    /// TLS with a certificate chaining to a trusted CA.
    VerifyCa,
    /// [`Self::VerifyCa`] plus the host name must match the certificate.
    VerifyFull,
}

impl DbTlsMode {
    /// Parses `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }
}

/// TLS settings for database connections.
#[derive(Clone, PartialEq, Eq)]
pub struct DbTls {
    /// The mode.
    pub mode: DbTlsMode,
    /// CAs to trust (PEM); the bundled RDS CAs when `None`.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for DbTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbTls")
            .field("mode", &self.mode)
            .field(
                "ca",
                &if self.ca_pem.is_some() {
                    "custom"
                } else {
                    "rds-bundle"
                },
            )
            .finish()
    }
}

impl DbTls {
    /// Verified TLS against the bundled RDS CAs: the default for databases reached through
    /// Secrets Manager (that is, in AWS).
    pub fn rds() -> Self {
        Self {
            mode: DbTlsMode::VerifyFull,
            ca_pem: None,
        }
    }

    fn ca(&self) -> &[u8] {
        self.ca_pem.as_deref().unwrap_or(RDS_CA_BUNDLE)
    }

    /// Applies the settings to PostgreSQL connect options.
    pub(crate) fn apply_pg(&self, options: PgConnectOptions) -> PgConnectOptions {
        let mode = match self.mode {
            DbTlsMode::Disable => PgSslMode::Disable,
            DbTlsMode::Prefer => PgSslMode::Prefer,
            DbTlsMode::Require => PgSslMode::Require,
            DbTlsMode::VerifyCa => PgSslMode::VerifyCa,
            DbTlsMode::VerifyFull => PgSslMode::VerifyFull,
        };
        options.ssl_mode(mode).ssl_root_cert_from_pem(self.ca().to_vec())
    }

    /// Applies the settings to MySQL / MariaDB connect options.
    pub(crate) fn apply_mysql(&self, options: MySqlConnectOptions) -> MySqlConnectOptions {
        let mode = match self.mode {
            DbTlsMode::Disable => MySqlSslMode::Disabled,
            DbTlsMode::Prefer => MySqlSslMode::Preferred,
            DbTlsMode::Require => MySqlSslMode::Required,
            DbTlsMode::VerifyCa => MySqlSslMode::VerifyCa,
            DbTlsMode::VerifyFull => MySqlSslMode::VerifyIdentity,
        };
        options.ssl_mode(mode).ssl_ca_from_pem(self.ca().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_holds_certificates_and_modes_parse() {
        let text = std::str::from_utf8(RDS_CA_BUNDLE).unwrap();
        assert!(text.matches("BEGIN CERTIFICATE").count() > 10);
        assert_eq!(DbTlsMode::parse("verify-full"), Some(DbTlsMode::VerifyFull));
        assert_eq!(DbTlsMode::parse("VERIFY"), None);
    }
}
