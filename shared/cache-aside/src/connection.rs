//! Opening the connection: one node or a cluster, plain or TLS, with a static AUTH token or
//! rotating credentials. Checked here, once, so that commands never meet a half-built target.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::AsyncDNSResolver;
use redis::{Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

use crate::error::CacheError;
use crate::settings::CacheSettings;
use crate::target::{RedisTarget, StreamingSource};

/// A connection to one Redis node or to a Redis Cluster. Cheap to clone; both kinds multiplex
/// concurrent requests and reconnect by themselves.
#[derive(Clone)]
pub enum RedisConnection {
    /// A single node (or a primary endpoint with replicas behind it).
    Single(ConnectionManager),
    /// A cluster: commands are routed by hash slot and follow MOVED/ASK redirects.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Checks `target` and opens a lazily connecting handle to it. Must run inside a Tokio runtime.
pub(crate) fn open(target: &RedisTarget, settings: &CacheSettings) -> Result<RedisConnection, CacheError> {
    if !(target.url.starts_with("redis://") || target.tls()) {
        return Err(CacheError::InvalidUrl(
            "the scheme must be redis:// or rediss://".into(),
        ));
    }
    if target.ca_pem.is_some() && !target.tls() {
        return Err(CacheError::InvalidUrl(
            "a CA bundle is set but the URL is not rediss:// (TLS)".into(),
        ));
    }
    if target.auth_token.is_some() && target.credentials.is_some() {
        return Err(CacheError::InvalidUrl(
            "an AUTH token and rotating credentials are both set; choose one".into(),
        ));
    }
    if target.tls() {
        // redis-rs uses the process-wide provider; another crate may have installed it first.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    if target.cluster {
        cluster(target, settings)
    } else {
        single(target, settings)
    }
}

/// A client error with only its kind: redis-rs messages can quote the URL.
fn invalid(e: RedisError) -> CacheError {
    CacheError::InvalidUrl(format!("{:?}", e.kind()))
}

/// Opens a lazily connecting single-node handle.
fn single(target: &RedisTarget, settings: &CacheSettings) -> Result<RedisConnection, CacheError> {
    let mut info = target.url.as_str().into_connection_info().map_err(invalid)?;
    if let Some(token) = &target.auth_token {
        let redis = info.redis_settings().clone().set_password(token);
        info = info.set_redis_settings(redis);
    }
    let client = match &target.ca_pem {
        Some(pem) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        None => redis::Client::open(info),
    }
    .map_err(invalid)?;
    let mut config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.op_timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(200));
    if let Some(source) = &target.credentials {
        config = config.set_credentials_provider(StreamingSource(Arc::clone(source)));
    }
    let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
    Ok(RedisConnection::Single(conn))
}

/// Opens a cluster handle that discovers the slot map in the background.
fn cluster(target: &RedisTarget, settings: &CacheSettings) -> Result<RedisConnection, CacheError> {
    let mut builder = ClusterClientBuilder::new(vec![target.url.as_str()])
        // Our own budget and single retry sit above; the client's own retries stay short.
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100)
        .connection_timeout(settings.connect_timeout)
        .response_timeout(settings.op_timeout);
    if let Some(token) = &target.auth_token {
        builder = builder.password(token);
    }
    if let Some(source) = &target.credentials {
        builder = builder.set_credentials_provider(StreamingSource(Arc::clone(source)));
    }
    if let Some(pem) = &target.ca_pem {
        builder = builder.certs(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        });
    }
    if target.endpoint_only {
        builder = builder.async_dns_resolver(EndpointOnly::of(target)?);
    }
    let client = builder.build().map_err(invalid)?;
    let config = ClusterConfig::new()
        .set_connection_timeout(settings.connect_timeout)
        .set_response_timeout(settings.op_timeout);
    Ok(RedisConnection::Cluster(
        client.get_pending_async_connection_with_config(config),
    ))
}

/// Resolves addresses on the endpoint's port, and refuses every other port at once, so a slot
/// refresh never waits on a node the client will not use (see [`RedisTarget::endpoint_only`]).
/// By port, not host: should the slot map name the endpoint by another name or an address, the
/// client keeps connecting (a refusal there would leave it no node at all).
struct EndpointOnly {
    port: u16,
}

impl EndpointOnly {
    fn of(target: &RedisTarget) -> Result<Self, CacheError> {
        let info = target.url.as_str().into_connection_info().map_err(invalid)?;
        match info.addr() {
            ConnectionAddr::Tcp(_, port) | ConnectionAddr::TcpTls { port, .. } => Ok(Self { port: *port }),
            _ => Err(CacheError::InvalidUrl(
                "connecting to the endpoint only needs a TCP address".into(),
            )),
        }
    }
}

impl AsyncDNSResolver for EndpointOnly {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        Box::pin(async move {
            if port != self.port {
                return Err(RedisError::from(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("{host}:{port} is not on the endpoint's port; only the endpoint is used"),
                )));
            }
            let addresses = tokio::net::lookup_host((host, port)).await?;
            Ok(Box::new(addresses) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_endpoint_resolves() {
        let target = RedisTarget {
            cluster: true,
            endpoint_only: true,
            ..RedisTarget::from_url("rediss://LocalHost:6379")
        };
        let endpoint = EndpointOnly::of(&target).expect("a TCP endpoint");
        let found = endpoint.resolve("localhost", 6379).await.map(Iterator::count);
        assert!(matches!(found, Ok(n) if n > 0), "the endpoint resolves");
        let read_port = endpoint.resolve("localhost", 6380).await.err().expect("refused");
        assert!(read_port.is_connection_refusal(), "{read_port}");
        let by_address = endpoint.resolve("127.0.0.1", 6379).await.map(Iterator::count);
        assert!(
            matches!(by_address, Ok(1)),
            "the endpoint's port under another name resolves"
        );
    }
}
