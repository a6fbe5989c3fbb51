//! A throwaway PostgreSQL cluster: initdb into a temp dir, postmaster on a free loopback port.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{find_binary, free_port, spawn_owned, wait_for};
use crate::server::{shared, OwnedServer, SharedServer};

/// A running PostgreSQL server with password (SCRAM) authentication over TCP.
pub struct Postgres {
    server: OwnedServer,
    port: u16,
    password: String,
    psql: PathBuf,
}

/// Debian keeps the server binaries off PATH.
fn server_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

/// Whether this process runs as root (servers then run as their system user).
pub(crate) fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// uid and gid of system user `name`.
pub(crate) fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.split(':').next() == Some(name))?;
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

/// When running as root, the server must run as the `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    if is_root() {
        system_user("postgres")
    } else {
        None
    }
}

fn as_server_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

impl Postgres {
    /// Initialises and starts a cluster. Panics with what to install if PostgreSQL is missing.
    pub fn start() -> Self {
        let extra = server_bin_dirs();
        let missing = "PostgreSQL not found: install it (apt-get install postgresql) or run scripts/test.sh";
        let initdb = find_binary("initdb", &extra).expect(missing);
        let postgres = find_binary("postgres", &extra).expect(missing);
        let psql = find_binary("psql", &extra).expect(missing);
        let user = postgres_user();
        let dir = tempfile::tempdir().expect("cannot create a temp dir for PostgreSQL");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("cannot chown the PostgreSQL dir");
        }
        let password = format!("pw{:x}", std::process::id() as u64 * 7919 + free_port() as u64);
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, &password).expect("cannot write the password file");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("cannot chown the password file");
        }
        let data = dir.path().join("data");
        let mut init = Command::new(initdb);
        init.arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_server_user(&mut init, user);
        let out = init.output().expect("cannot run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let port = free_port();
        let mut cmd = Command::new(postgres);
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"])
            // Tests count what the database ran (pg_stat_statements) when traffic is hostile.
            .args(["-c", "shared_preload_libraries=pg_stat_statements"])
            // The invalidator's logical source reads committed changes from a slot.
            .args(["-c", "wal_level=logical", "-c", "max_replication_slots=20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_server_user(&mut cmd, user);
        let child = spawn_owned(cmd).expect("cannot spawn postgres");
        // SIGINT: fast shutdown, clients are disconnected.
        let server = Self {
            server: OwnedServer::new(child, Some(dir), libc::SIGINT, Duration::from_secs(10)),
            port,
            password,
            psql,
        };
        assert!(
            wait_for(Duration::from_secs(20), || server
                .psql("postgres", &["-c", "SELECT 1"])
                .is_ok()),
            "PostgreSQL did not accept connections on port {port} within 20 s"
        );
        server
    }

    /// One server per test process, stopped (and its directory removed) when the process exits.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        shared(&SHARED, Postgres::start)
    }

    /// Stops the server (fast shutdown: clients are disconnected) and removes its directory.
    pub fn stop(&self) {
        self.server.stop();
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// URL of database `db` as the `postgres` user.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{}",
            self.password, self.port, db
        )
    }

    /// Runs psql against `db` with extra arguments; returns stdout or stderr as the error.
    pub fn psql(&self, db: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.psql)
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(args)
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Creates database `name` and runs the SQL files (paths relative to the workspace) in it.
    /// Returns its URL.
    pub fn create_database(&self, name: &str, sql_files: &[&str]) -> String {
        self.psql("postgres", &["-c", &format!("CREATE DATABASE \"{name}\"")])
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        for file in sql_files {
            let path = crate::workspace_path(file);
            self.psql(name, &["-f", &path.to_string_lossy()])
                .unwrap_or_else(|e| panic!("cannot run {file} in {name}: {e}"));
        }
        self.url(name)
    }
}

impl SharedServer for Postgres {
    fn owned(&self) -> &OwnedServer {
        &self.server
    }
}
