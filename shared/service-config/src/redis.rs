//! Where Redis is and how to authenticate to it (`REDIS_URL`, an AUTH token or IAM tokens), with
//! what ElastiCache demands of each: IAM tokens and Serverless only over TLS.

use crate::vars::Vars;
use crate::{ConfigError, RedisIam, RedisSettings};

/// `REDIS_*`: where Redis is and how to authenticate. IAM tokens and Serverless both need TLS;
/// Serverless speaks the cluster protocol whatever `REDIS_CLUSTER` says.
pub(crate) fn redis_settings(v: &Vars) -> Result<RedisSettings, ConfigError> {
    let url = v.required(
        "REDIS_URL",
        "set it to redis://host:port or rediss://host:port (TLS)",
    )?;
    let serverless = v.flag("REDIS_SERVERLESS")?;
    let auth_secret_id = v.text("REDIS_AUTH_SECRET_ID");
    let iam = match (v.text("REDIS_IAM_USER"), v.text("REDIS_IAM_CACHE_NAME")) {
        (None, None) => None,
        // ElastiCache stores cache names and user IDs in lower case (and an IAM user's name is its
        // ID), so a name given with capitals means its lower-case form.
        (Some(user), Some(cache_name)) => Some(RedisIam {
            user: user.to_ascii_lowercase(),
            cache_name: cache_name.to_ascii_lowercase(),
        }),
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                name: "REDIS_IAM_CACHE_NAME",
                hint: "IAM authentication signs its tokens for one cache: set the replication group ID or serverless cache name",
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                name: "REDIS_IAM_USER",
                hint: "IAM authentication needs the IAM-enabled ElastiCache user ID",
            })
        }
    };
    let tls_needed = |name: &'static str, value: String| ConfigError::Invalid {
        name,
        value,
        problem: "ElastiCache accepts it only over TLS: REDIS_URL must be rediss://".into(),
    };
    if let Some(iam) = &iam {
        if !url.starts_with("rediss://") {
            return Err(tls_needed("REDIS_IAM_USER", iam.user.clone()));
        }
        if auth_secret_id.is_some() {
            return Err(ConfigError::Invalid {
                name: "REDIS_AUTH_SECRET_ID",
                value: "(set)".into(),
                problem: "choose one of an AUTH token and IAM authentication (REDIS_IAM_USER)".into(),
            });
        }
        let valid_name = !iam.cache_name.is_empty()
            && iam.cache_name.len() <= 63
            && iam
                .cache_name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_name {
            return Err(ConfigError::Invalid {
                name: "REDIS_IAM_CACHE_NAME",
                value: iam.cache_name.clone(),
                problem: "an ElastiCache cache name is 1 to 63 letters, digits and -".into(),
            });
        }
    }
    if serverless && !url.starts_with("rediss://") {
        return Err(tls_needed("REDIS_SERVERLESS", "true".into()));
    }
    Ok(RedisSettings {
        url,
        cluster: serverless || v.flag("REDIS_CLUSTER")?,
        auth_secret_id,
        ca_pem: v.file("REDIS_CA_PATH")?,
        serverless,
        iam,
    })
}

#[cfg(test)]
mod tests {
    use crate::testing::{vars, BASE};
    use crate::{RedisIam, ServiceConfig};

    #[test]
    fn iam_authentication_and_serverless_need_tls_and_name_their_cache() {
        let with = |extra: &[(&str, &str)]| {
            let mut v = vars(&BASE);
            v.insert("REDIS_URL".into(), "rediss://cache.example:6379".into());
            for (k, val) in extra {
                v.insert((*k).into(), (*val).into());
            }
            ServiceConfig::from_map(&v)
        };
        let iam = [("REDIS_IAM_USER", "app"), ("REDIS_IAM_CACHE_NAME", "ca-1")];
        let c = with(&[iam[0], iam[1], ("REDIS_SERVERLESS", "true")]).unwrap();
        assert!(
            c.redis.serverless && c.redis.cluster,
            "serverless speaks the cluster protocol"
        );
        assert_eq!(
            c.redis.iam,
            Some(RedisIam {
                user: "app".into(),
                cache_name: "ca-1".into()
            })
        );
        let refused = |extra: &[(&str, &str)]| with(extra).unwrap_err().to_string();
        assert!(refused(&iam[..1]).contains("REDIS_IAM_CACHE_NAME"));
        assert!(refused(&iam[1..]).contains("REDIS_IAM_USER"));
        assert!(refused(&[iam[0], ("REDIS_IAM_CACHE_NAME", "bad_name")]).contains("letters, digits"));
        let mixed = with(&[
            ("REDIS_IAM_USER", "CA-App"),
            ("REDIS_IAM_CACHE_NAME", "CacheAside-Redis"),
        ])
        .unwrap();
        assert_eq!(
            mixed.redis.iam,
            Some(RedisIam {
                user: "ca-app".into(),
                cache_name: "cacheaside-redis".into()
            }),
            "names are taken as ElastiCache stores them"
        );
        assert!(refused(&[iam[0], iam[1], ("REDIS_AUTH_SECRET_ID", "s")]).contains("choose one"));
        let mut plain = vars(&BASE);
        plain.insert("REDIS_SERVERLESS".into(), "true".into());
        assert!(ServiceConfig::from_map(&plain)
            .unwrap_err()
            .to_string()
            .contains("rediss://"));
        plain.remove("REDIS_SERVERLESS");
        plain.extend(iam.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(ServiceConfig::from_map(&plain)
            .unwrap_err()
            .to_string()
            .contains("rediss://"));
    }
}
