//! A throwaway MariaDB (or MySQL) server on a free loopback port.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{find_binary, free_port, spawn_owned, wait_for};
use crate::server::{shared, OwnedServer, SharedServer};

/// A running MariaDB with an `app` user (password authentication over TCP).
pub struct MariaDb {
    server: OwnedServer,
    port: u16,
    password: String,
    client: PathBuf,
    socket: PathBuf,
}

fn sbin() -> Vec<PathBuf> {
    vec![PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]
}

impl MariaDb {
    /// Initialises and starts a server. Panics with what to install if MariaDB is missing.
    pub fn start() -> Self {
        let missing = "MariaDB not found: install it (apt-get install mariadb-server) or run scripts/test.sh";
        let install = find_binary("mariadb-install-db", &sbin())
            .or_else(|| find_binary("mysql_install_db", &sbin()))
            .expect(missing);
        let server = find_binary("mariadbd", &sbin())
            .or_else(|| find_binary("mysqld", &sbin()))
            .expect(missing);
        let client = find_binary("mariadb", &sbin())
            .or_else(|| find_binary("mysql", &sbin()))
            .expect(missing);
        let dir = tempfile::tempdir().expect("cannot create a temp dir for MariaDB");
        let as_root = crate::postgres::is_root();
        if as_root {
            if let Some((uid, gid)) = crate::postgres::system_user("mysql") {
                std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                    .expect("cannot chown the MariaDB dir");
            }
        }
        let data = dir.path().join("data");
        let out = Command::new(install)
            .args([
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .output()
            .expect("cannot run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_port();
        let socket = dir.path().join("sock");
        let mut cmd = Command::new(server);
        cmd.args([
            "--no-defaults",
            "--user=mysql",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
        ])
        .args([
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
        ])
        .args(["--innodb-buffer-pool-size=64M", "--max-connections=300"])
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = spawn_owned(cmd).expect("cannot spawn mariadbd");
        let password = format!("app{:x}", std::process::id() as u64 * 104_729 + port as u64);
        let server = Self {
            server: OwnedServer::new(child, Some(dir), libc::SIGTERM, Duration::from_secs(20)),
            port,
            password,
            client,
            socket,
        };
        assert!(
            wait_for(Duration::from_secs(30), || server.root_sql("SELECT 1").is_ok()),
            "MariaDB did not accept connections on port {port} within 30 s"
        );
        let pw = &server.password;
        server
            .root_sql(&format!(
                "CREATE USER 'app'@'%' IDENTIFIED BY '{pw}'; GRANT ALL ON *.* TO 'app'@'%' WITH GRANT OPTION;"
            ))
            .unwrap_or_else(|e| panic!("cannot create the app user: {e}"));
        server
    }

    /// One server per test process, stopped (and its directory removed) when the process exits.
    pub fn shared() -> &'static MariaDb {
        static SHARED: OnceLock<MariaDb> = OnceLock::new();
        shared(&SHARED, MariaDb::start)
    }

    /// Stops the server and removes its directory.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `app` user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// URL of database `db` as the `app` user.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://app:{}@127.0.0.1:{}/{}", self.password, self.port, db)
    }

    /// Runs SQL as root over the socket; returns tab-separated output.
    pub fn root_sql(&self, sql: &str) -> Result<String, String> {
        let out = Command::new(&self.client)
            .args(["--no-defaults", "-uroot", "-N", "-B"])
            .arg(format!("--socket={}", self.socket.display()))
            .args(["-e", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Creates database `name`; returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.root_sql(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        self.url(name)
    }
}

impl SharedServer for MariaDb {
    fn owned(&self) -> &OwnedServer {
        &self.server
    }
}
