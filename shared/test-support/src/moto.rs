//! A throwaway AWS API emulator (moto_server: S3 and Secrets Manager on one port).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{find_binary, free_port, spawn_owned, wait_for};
use crate::server::{shared, OwnedServer, SharedServer};

/// A running moto_server on 127.0.0.1.
pub struct Moto {
    server: OwnedServer,
    port: u16,
}

/// Where scripts/lib.sh installs the Python tools.
fn tools_bin() -> Vec<PathBuf> {
    let tools = std::env::var_os("CACHE_ASIDE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cache-aside-tools")));
    tools.map(|t| vec![t.join("bin")]).unwrap_or_default()
}

impl Moto {
    /// Starts the emulator. Panics with what to install if moto_server is missing.
    pub fn start() -> Self {
        let binary = find_binary("moto_server", &tools_bin())
            .expect("moto_server not found: pip install 'moto[server]' or run scripts/test.sh");
        let port = free_port();
        let mut cmd = Command::new(binary);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_owned(cmd).expect("cannot spawn moto_server");
        let moto = Self {
            server: OwnedServer::new(child, None, libc::SIGTERM, Duration::from_secs(5)),
            port,
        };
        assert!(
            wait_for(Duration::from_secs(30), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "moto_server did not listen on port {port} within 30 s"
        );
        moto
    }

    /// One emulator per test process (tests use distinct buckets and secret names).
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        shared(&SHARED, Moto::start)
    }

    /// Stops the emulator.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The variables that point the AWS SDK at this emulator (as a function would see them).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ]
    }
}

impl SharedServer for Moto {
    fn owned(&self) -> &OwnedServer {
        &self.server
    }
}
