//! Settings that work but are probably not meant: secrets or data crossing the network in
//! clear.

use crate::{database_variable, DatabaseSource, ServiceConfig};

impl ServiceConfig {
    /// Settings that work but are probably not meant: secrets or data crossing the network in
    /// clear. Logged at start-up; never fatal (a local setup runs without TLS on purpose).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let redis_password = self
            .redis
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .is_some_and(|(credentials, _)| credentials.contains(':'));
        if !self.redis.url.starts_with("rediss://") && (redis_password || self.redis.auth_secret_id.is_some())
        {
            warnings.push(
                "REDIS_URL is redis:// but Redis is token-authenticated: the token crosses the \
                 network in clear; use rediss://"
                    .to_owned(),
            );
        }
        if self.database.tls.is_none() {
            for (name, source) in &self.databases {
                let DatabaseSource::Url(url) = source else {
                    continue;
                };
                let query = url.split_once('?').map_or("", |(_, q)| q);
                let sets_tls = query.split('&').any(|p| {
                    p.starts_with("sslmode=") || p.starts_with("ssl-mode=") || p.starts_with("ssl_mode=")
                });
                if !sets_tls {
                    let variable = database_variable("DATABASE_URL", name);
                    warnings.push(format!(
                        "{variable} sets no TLS mode: the connection may be unencrypted; add \
                         sslmode=verify-full (or set DB_SSL_MODE)"
                    ));
                }
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{vars, BASE};
    use crate::ServiceConfig;

    #[test]
    fn clear_text_secrets_and_data_are_warned_about() {
        let warnings = ServiceConfig::from_map(&vars(&BASE)).unwrap().warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("rediss://") && warnings[1].starts_with("DATABASE_URL sets no TLS"));
        let mut safe = vars(&[
            ("REDIS_URL", "rediss://default:pw@host:1"),
            ("DATABASE_URL", "postgres://u:p@h/db?sslmode=verify-full"),
        ]);
        assert!(ServiceConfig::from_map(&safe).unwrap().warnings().is_empty());
        safe.insert("DATABASE_URL_ARTICLES".into(), "mysql://u:p@h/db".into());
        let warnings = ServiceConfig::from_map(&safe).unwrap().warnings();
        assert!(warnings[0].starts_with("DATABASE_URL_ARTICLES"), "{warnings:?}");
        safe.insert("DB_SSL_MODE".into(), "require".into());
        assert!(ServiceConfig::from_map(&safe).unwrap().warnings().is_empty());
        assert!(!format!("{warnings:?}").contains(":p@"), "no URL is echoed");
    }
}
