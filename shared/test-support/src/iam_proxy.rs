//! A stand-in for ElastiCache's front door: a TLS endpoint before a plain `redis-server` that
//! checks IAM tokens. `AUTH <iam-user> <token>` (or `HELLO … AUTH <iam-user> <token>`) is let
//! through only when the token is a SigV4 connect request for this cache and user, signed with
//! the test credentials and not expired; the token is then swapped for the user's real ACL
//! password. A refused token becomes a wrong password, so Redis itself answers `WRONGPASS`, in
//! order. Other users' AUTH passes unchanged.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_clients::{connect_token, ConnectRequest, TOKEN_LIFETIME};
use aws_credential_types::Credentials;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The IAM identity tests sign with; the same keys the S3/Secrets Manager emulator accepts.
pub const IAM_ACCESS_KEY_ID: &str = "test";
/// Secret key of [`IAM_ACCESS_KEY_ID`].
pub const IAM_SECRET_ACCESS_KEY: &str = "test";
/// Region the tokens are signed for.
pub const IAM_REGION: &str = "us-east-1";
/// The IAM-enabled ACL user.
pub const IAM_USER: &str = "cache-aside-iam";
/// The cache name the tokens must name.
pub const IAM_CACHE_NAME: &str = "cache-aside-test";

/// Tokens checked so far.
#[derive(Debug, Default)]
pub struct TokenCounts {
    accepted: AtomicUsize,
    refused: AtomicUsize,
    connections: AtomicUsize,
}

impl TokenCounts {
    /// Valid tokens, each swapped for the real password.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Tokens refused (bad signature, other cache or user, expired).
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Client connections the proxy accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// What the proxy checks tokens against.
struct Policy {
    request: ConnectRequest,
    password: String,
    counts: Arc<TokenCounts>,
}

/// The running proxy; stopped when dropped.
pub struct IamProxy {
    port: u16,
    counts: Arc<TokenCounts>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IamProxy {
    /// Listens on `listener` (TLS with `cert_pem`/`key_pem`) and forwards to 127.0.0.1:`upstream`,
    /// where `IAM_USER` has ACL password `password`. `serverless` tokens must name the
    /// serverless resource type. With `replication`, a connection that does not open with a TLS
    /// handshake is relayed as it is: a replica node replicates from the address its primary
    /// announces, which is this one.
    pub fn start(
        listener: std::net::TcpListener,
        cert_pem: &[u8],
        key_pem: &[u8],
        upstream: u16,
        password: &str,
        serverless: bool,
        replication: bool,
    ) -> Self {
        let port = listener.local_addr().expect("bound").port();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .expect("the proxy certificate is PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem).expect("the proxy key is PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the proxy certificate and key match");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let counts = Arc::new(TokenCounts::default());
        let policy = Arc::new(Policy {
            request: ConnectRequest {
                user: IAM_USER.into(),
                cache_name: IAM_CACHE_NAME.into(),
                serverless,
                region: IAM_REGION.into(),
            },
            password: password.to_owned(),
            counts: Arc::clone(&counts),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        listener.set_nonblocking(true).expect("non-blocking listener");
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        let policy = Arc::clone(&policy);
                        tokio::spawn(async move {
                            let upstream: SocketAddr = ([127, 0, 0, 1], upstream).into();
                            if replication && !opens_with_tls(&client).await {
                                let _ = relay_plain(client, upstream).await;
                                return;
                            }
                            policy.counts.connections.fetch_add(1, Ordering::Relaxed);
                            let _ = relay(client, acceptor, upstream, policy).await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Self {
            port,
            counts,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The TLS port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many tokens were accepted and refused.
    pub fn counts(&self) -> &TokenCounts {
        &self.counts
    }
}

impl Drop for IamProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether the first byte is a TLS record's (a handshake, 0x16). Waits for it at most 5 s.
async fn opens_with_tls(client: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(5), client.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == 0x16,
        _ => true,
    }
}

/// A replica's replication link, copied both ways unchanged.
async fn relay_plain(mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    tokio::io::copy_bidirectional(&mut client, &mut server).await?;
    Ok(())
}

/// One client connection: commands from the client are parsed (to find AUTH), replies from
/// Redis are copied back as they are.
async fn relay(
    client: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
    policy: Arc<Policy>,
) -> std::io::Result<()> {
    let tls = tokio::time::timeout(Duration::from_secs(5), acceptor.accept(client)).await??;
    let server = TcpStream::connect(upstream).await?;
    let (client_read, mut client_write) = tokio::io::split(tls);
    let (server_read, mut server_write) = server.into_split();
    let replies = tokio::spawn(async move {
        let mut server_read = server_read;
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let mut client_read = BufReader::new(client_read);
    while let Some(mut command) = read_command(&mut client_read).await? {
        if let Some(at) = iam_auth_position(&command) {
            let token = String::from_utf8_lossy(&command[at]).into_owned();
            let verdict = check_token(&token, &policy.request, SystemTime::now());
            command[at] = match verdict {
                Ok(()) => {
                    policy.counts.accepted.fetch_add(1, Ordering::Relaxed);
                    policy.password.clone().into_bytes()
                }
                Err(_) => {
                    policy.counts.refused.fetch_add(1, Ordering::Relaxed);
                    b"refused-by-the-iam-proxy".to_vec()
                }
            };
        }
        server_write.write_all(&encode(&command)).await?;
    }
    let _ = server_write.shutdown().await;
    let _ = replies.await;
    Ok(())
}

/// Where the token sits when `command` authenticates the IAM user.
fn iam_auth_position(command: &[Vec<u8>]) -> Option<usize> {
    let name = command.first()?;
    let user_at = if name.eq_ignore_ascii_case(b"AUTH") {
        1
    } else if name.eq_ignore_ascii_case(b"HELLO") {
        command.iter().position(|a| a.eq_ignore_ascii_case(b"AUTH"))? + 1
    } else {
        return None;
    };
    (command.get(user_at)?.as_slice() == IAM_USER.as_bytes() && command.len() > user_at + 1)
        .then_some(user_at + 1)
}

/// Reads one RESP array of bulk strings (what clients send); `None` at end of stream.
async fn read_command<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let count: usize = line
        .trim_end()
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| invalid("expected a RESP array"))?;
    let mut parts = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).await?;
        let len: usize = line
            .trim_end()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| invalid("expected a bulk string"))?;
        let mut bulk = vec![0; len + 2];
        reader.read_exact(&mut bulk).await?;
        bulk.truncate(len);
        parts.push(bulk);
    }
    Ok(Some(parts))
}

fn encode(command: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", command.len()).into_bytes();
    for part in command {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Accepts `token` if it is exactly the token the test credentials sign for `expected` at the
/// time it states, and that time is within its 15 minutes (and not ahead of ours by over 60 s).
pub fn check_token(token: &str, expected: &ConnectRequest, now: SystemTime) -> Result<(), String> {
    let query = token
        .strip_prefix(&format!("{}/?", expected.cache_name))
        .ok_or("the token names another cache")?;
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    };
    let signed_at = param("X-Amz-Date")
        .and_then(parse_amz_date)
        .ok_or("no valid X-Amz-Date")?;
    let age = now.duration_since(signed_at);
    match age {
        Ok(age) if age > TOKEN_LIFETIME => return Err(format!("expired {:?} ago", age - TOKEN_LIFETIME)),
        Err(ahead) if ahead.duration() > Duration::from_secs(60) => return Err("signed in the future".into()),
        _ => {}
    }
    let session_token = param("X-Amz-Security-Token").map(decode);
    let credentials = Credentials::new(
        IAM_ACCESS_KEY_ID,
        IAM_SECRET_ACCESS_KEY,
        session_token,
        None,
        "iam-proxy",
    );
    let expected_token = connect_token(expected, &credentials, signed_at).map_err(|e| e.to_string())?;
    if expected_token == token {
        Ok(())
    } else {
        Err("the signature does not match".into())
    }
}

/// Percent-decoding of a query value.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `20150830T123600Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let digits = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    if text.len() != 16 || &text[8..9] != "T" || !text.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hh, mm, ss) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160));
        assert!(parse_amz_date("2015-08-30").is_none());
    }

    #[test]
    fn tokens_are_checked() {
        let request = ConnectRequest {
            user: IAM_USER.into(),
            cache_name: IAM_CACHE_NAME.into(),
            serverless: true,
            region: IAM_REGION.into(),
        };
        let now = SystemTime::now();
        let sign = |request: &ConnectRequest, secret: &str, at: SystemTime| {
            let credentials = Credentials::new(IAM_ACCESS_KEY_ID, secret, Some("s/t+k".into()), None, "t");
            connect_token(request, &credentials, at).unwrap()
        };
        let good = sign(&request, IAM_SECRET_ACCESS_KEY, now);
        assert_eq!(check_token(&good, &request, now), Ok(()));
        assert!(check_token(&sign(&request, "other", now), &request, now).is_err());
        let old = now - TOKEN_LIFETIME - Duration::from_secs(2);
        assert!(check_token(&sign(&request, IAM_SECRET_ACCESS_KEY, old), &request, now).is_err());
        let other_user = ConnectRequest {
            user: "someone".into(),
            ..request.clone()
        };
        assert!(check_token(&sign(&other_user, IAM_SECRET_ACCESS_KEY, now), &request, now).is_err());
        let not_serverless = ConnectRequest {
            serverless: false,
            ..request.clone()
        };
        assert!(check_token(&sign(&not_serverless, IAM_SECRET_ACCESS_KEY, now), &request, now).is_err());
    }
}
