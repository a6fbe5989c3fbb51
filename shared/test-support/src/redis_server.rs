//! A throwaway `redis-server`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{find_binary, free_port, spawn_owned, stop_child, wait_for};

/// A running `redis-server` on 127.0.0.1, without persistence, with DEBUG allowed locally.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl RedisServer {
    /// Starts a server on a free port. Panics with what to install if `redis-server` is missing.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("cannot create a temp dir for redis-server");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let binary = find_binary("redis-server", &[]).expect(
            "redis-server not found: install it (apt-get install redis-server) or run scripts/test.sh",
        );
        let mut cmd = Command::new(binary);
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--enable-debug-command", "local", "--dir"])
        .arg(self.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = spawn_owned(cmd).expect("cannot spawn redis-server");
        self.child = Some(child);
        assert!(
            wait_for(Duration::from_secs(10), || answers_ping(self.port)),
            "redis-server did not answer PING on port {} within 10 s",
            self.port
        );
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (connections are cut, data is lost).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc::SIGKILL, Duration::from_secs(5));
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
