//! A throwaway Redis: one `redis-server`, one with TLS and a password, a 3-master cluster, or an
//! ElastiCache Serverless look-alike, chosen by `TEST_REDIS_MODE` (`plain`, `tls`, `cluster`,
//! `serverless`) so one suite runs against all four.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::iam_proxy::{IamProxy, TokenCounts, IAM_USER};
use crate::process::{find_binary, free_port, spawn_owned, stop_child, wait_for};
use crate::silent_port::SilentPort;

/// Which kind of Redis [`RedisServer::start`] brings up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    /// One server, plain TCP, no password.
    Plain,
    /// One server, TLS only (certificate from a throwaway CA) and `requirepass`.
    Tls,
    /// Three masters in a Redis Cluster, plain TCP.
    Cluster,
    /// Like ElastiCache Serverless: one TLS endpoint speaking the cluster protocol (every slot
    /// on one node, so cross-slot commands fail as they do there), reached only through the
    /// [`IamProxy`], which checks IAM tokens for [`crate::iam_proxy::IAM_USER`].
    Serverless,
}

impl RedisMode {
    /// The mode named by `TEST_REDIS_MODE` (default `plain`). Panics on an unknown name.
    pub fn from_env() -> Self {
        match std::env::var("TEST_REDIS_MODE").as_deref() {
            Err(_) | Ok("" | "plain") => Self::Plain,
            Ok("tls") => Self::Tls,
            Ok("cluster") => Self::Cluster,
            Ok("serverless") => Self::Serverless,
            Ok(other) => panic!("TEST_REDIS_MODE={other:?}: expected plain, tls, cluster or serverless"),
        }
    }
}

/// A running Redis on 127.0.0.1, without persistence, with DEBUG allowed locally.
pub struct RedisServer {
    mode: RedisMode,
    children: Vec<Child>,
    ports: Vec<u16>,
    /// Cluster bus ports, kept across restarts (each node's nodes.conf records its peers').
    bus_ports: Vec<u16>,
    password: String,
    dir: tempfile::TempDir,
    /// The TLS endpoint that checks IAM tokens (Serverless mode).
    proxy: Option<IamProxy>,
    /// The address a replica announces, where nothing answers (Serverless mode, see
    /// [`RedisServer::start_serverless_with_unreachable_reader`]).
    reader: Option<SilentPort>,
}

/// A CA and a server certificate for `localhost` / `127.0.0.1`, made once per test process.
struct TestCa {
    dir: PathBuf,
}

extern "C" fn remove_test_ca() {
    if let Some(ca) = TEST_CA.get() {
        let _ = std::fs::remove_dir_all(&ca.dir);
    }
}

static TEST_CA: OnceLock<TestCa> = OnceLock::new();

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl not found: install it (apt-get install openssl)");
    assert!(status.success(), "openssl {args:?} failed");
}

fn test_ca() -> &'static TestCa {
    TEST_CA.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cache-aside-test-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the test CA directory");
        // SAFETY: registering a plain extern "C" function, once (inside get_or_init).
        unsafe { libc::atexit(remove_test_ca) };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=cache-aside test CA"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
        ca.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        ca.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&dir, &ca);
        let mut csr = vec!["req", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"];
        csr.extend(ec);
        openssl(&dir, &csr);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .expect("cannot write the certificate extensions");
        openssl(
            &dir,
            &[
                "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "server.ext", "-out", "server.crt",
            ],
        );
        TestCa { dir }
    })
}

/// The PEM file of the CA that signs TLS test servers' certificates.
pub fn test_ca_path() -> PathBuf {
    test_ca().dir.join("ca.crt")
}

fn accepts_tcp(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
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

fn redis_cli() -> PathBuf {
    find_binary("redis-cli", &[]).expect("redis-cli not found: install redis-tools")
}

/// `redis-cli -p port args...` (authenticated as `default` when `password` is given), returning
/// stdout.
fn cli(port: u16, password: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new(redis_cli());
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(password) = password {
        cmd.args(["--no-auth-warning", "-a", password]);
    }
    let out = cmd
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("cannot run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisServer {
    /// Starts the kind of Redis `TEST_REDIS_MODE` names on free ports. Panics with what to
    /// install if `redis-server` is missing.
    pub fn start() -> Self {
        Self::start_mode(RedisMode::from_env())
    }

    /// Starts a Redis of kind `mode`.
    pub fn start_mode(mode: RedisMode) -> Self {
        Self::start_with(mode, false)
    }

    /// The Serverless look-alike whose slot map also lists a replica, as ElastiCache Serverless
    /// lists its read port (6380) beside the endpoint, at an address that accepts connections
    /// and never answers (a read port the client's network cannot reach).
    pub fn start_serverless_with_unreachable_reader() -> Self {
        Self::start_with(RedisMode::Serverless, true)
    }

    fn start_with(mode: RedisMode, reader: bool) -> Self {
        let nodes = if mode == RedisMode::Cluster { 3 } else { 1 };
        let mut server = Self {
            mode,
            children: Vec::new(),
            ports: Vec::new(),
            bus_ports: Vec::new(),
            password: format!("pw-{:016x}", fastrand::u64(..)),
            dir: tempfile::tempdir().expect("cannot create a temp dir for redis-server"),
            proxy: None,
            reader: reader.then(SilentPort::start),
        };
        if mode == RedisMode::Serverless {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a port for the IAM proxy");
            let ca = &test_ca().dir;
            let read = |name: &str| std::fs::read(ca.join(name)).expect("the test certificate exists");
            let upstream = free_port();
            server.proxy = Some(IamProxy::start(
                listener,
                &read("server.crt"),
                &read("server.key"),
                upstream,
                &server.iam_password(),
                true,
                reader,
            ));
            server.ports = vec![upstream];
            server.bus_ports = vec![free_port()];
            if reader {
                server.ports.push(free_port());
                server.bus_ports.push(free_port());
            }
            if let Err(e) = server.launch() {
                panic!("{e}");
            }
            let password = Some(server.password.as_str());
            cli(upstream, password, &["cluster", "addslotsrange", "0", "16383"]);
            if let Some(reader) = &server.reader {
                server.add_replica(reader.port());
            }
            server.wait_cluster_ok();
            return server;
        }
        // A port free a moment ago can be taken by another test's client socket: retry on new ones.
        let mut attempts = 0;
        loop {
            server.ports = (0..nodes).map(|_| free_port()).collect();
            server.bus_ports = (0..nodes).map(|_| free_port()).collect();
            match server.launch() {
                Ok(()) => break,
                Err(e) if attempts == 3 => panic!("{e}"),
                Err(_) => {
                    attempts += 1;
                    server.stop();
                }
            }
        }
        if mode == RedisMode::Cluster {
            let nodes: Vec<String> = server.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            let mut args = vec!["--cluster", "create"];
            args.extend(nodes.iter().map(String::as_str));
            args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
            cli(server.ports[0], None, &args);
            server.wait_cluster_ok();
        }
        server
    }

    fn launch(&mut self) -> Result<(), String> {
        let binary = find_binary("redis-server", &[]).expect(
            "redis-server not found: install it (apt-get install redis-server) or run scripts/test.sh",
        );
        for (i, port) in self.ports.clone().into_iter().enumerate() {
            let dir = self.dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&dir).expect("cannot create the node directory");
            let mut cmd = Command::new(&binary);
            cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--enable-debug-command", "local", "--dir"])
                .arg(&dir);
            match self.mode {
                RedisMode::Plain => {
                    cmd.args(["--port", &port.to_string()]);
                }
                RedisMode::Tls => {
                    let ca = &test_ca().dir;
                    cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                        .arg("--tls-cert-file")
                        .arg(ca.join("server.crt"))
                        .arg("--tls-key-file")
                        .arg(ca.join("server.key"))
                        .arg("--tls-ca-cert-file")
                        .arg(ca.join("ca.crt"))
                        .args(["--tls-auth-clients", "no", "--requirepass", &self.password]);
                }
                RedisMode::Cluster => {
                    cmd.args(["--port", &port.to_string(), "--cluster-enabled", "yes"])
                        .args(["--cluster-port", &self.bus_ports[i].to_string()])
                        .args(["--cluster-node-timeout", "5000", "--cluster-config-file"])
                        .arg(dir.join("nodes.conf"));
                }
                RedisMode::Serverless => {
                    let proxy = self.proxy.as_ref().expect("the proxy starts first").port();
                    // The primary announces the proxy; a replica, the reader's address.
                    let announced = match (&self.reader, i) {
                        (Some(reader), 1) => reader.port(),
                        _ => proxy,
                    };
                    cmd.args(["--port", &port.to_string(), "--cluster-enabled", "yes"])
                        .args(["--cluster-port", &self.bus_ports[i].to_string()])
                        .args(["--cluster-node-timeout", "5000", "--cluster-config-file"])
                        .arg(dir.join("nodes.conf"))
                        // Clients learn the proxy's name and port from CLUSTER SLOTS, as they
                        // learn the serverless endpoint's.
                        .args(["--cluster-announce-hostname", "localhost"])
                        .args(["--cluster-preferred-endpoint-type", "hostname"])
                        .args(["--cluster-announce-port", &announced.to_string()])
                        .args(["--requirepass", &self.password, "--masterauth", &self.password])
                        .args(["--user", IAM_USER, "on", &format!(">{}", self.iam_password())])
                        // The access string the template gives the functions' IAM user.
                        .args(["~*", "&*", "+@all", "-@dangerous"]);
                }
            }
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = spawn_owned(cmd).expect("cannot spawn redis-server");
            let ready = match self.mode {
                RedisMode::Tls | RedisMode::Serverless => accepts_tcp,
                _ => answers_ping,
            };
            // A node that exits (its port was taken) ends the wait early.
            let mut exited = false;
            let up = wait_for(Duration::from_secs(10), || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited || ready(port)
            });
            self.children.push(child);
            if !up || exited {
                return Err(format!("redis-server did not come up on port {port} within 10 s"));
            }
        }
        Ok(())
    }

    /// Makes the second node a replica of the first and waits until the first's slot map lists
    /// it at `announced` (a replica is listed once it has synchronised).
    fn add_replica(&self, announced: u16) {
        let password = Some(self.password.as_str());
        let (primary, replica) = (self.ports[0], self.ports[1]);
        let (primary_bus, announced) = (self.bus_ports[0].to_string(), announced.to_string());
        cli(
            replica,
            password,
            &["cluster", "meet", "127.0.0.1", &primary.to_string(), &primary_bus],
        );
        let id = cli(primary, password, &["cluster", "myid"]).trim().to_owned();
        let replicating = wait_for(Duration::from_secs(20), || {
            cli(replica, password, &["cluster", "replicate", &id]).trim() == "OK"
        });
        let listed = replicating
            && wait_for(Duration::from_secs(20), || {
                cli(primary, password, &["cluster", "slots"])
                    .lines()
                    .any(|line| line.trim() == announced)
            });
        assert!(
            listed,
            "the replica announcing port {announced} never joined the slot map"
        );
    }

    /// Connections the unreachable reader accepted (see
    /// [`Self::start_serverless_with_unreachable_reader`]).
    pub fn reader_connections(&self) -> Option<usize> {
        self.reader.as_ref().map(SilentPort::accepted)
    }

    /// The `default` user's password, where redis-cli needs one to reach the node.
    fn cli_password(&self) -> Option<&str> {
        (self.mode == RedisMode::Serverless).then_some(self.password.as_str())
    }

    /// The IAM user's real ACL password, which only the proxy presents.
    fn iam_password(&self) -> String {
        format!("iam-{}", self.password)
    }

    fn wait_cluster_ok(&self) {
        let ok = wait_for(Duration::from_secs(20), || {
            self.ports
                .iter()
                .all(|p| cli(*p, self.cli_password(), &["cluster", "info"]).contains("cluster_state:ok"))
        });
        assert!(
            ok,
            "the Redis Cluster on {:?} did not reach cluster_state:ok",
            self.ports
        );
    }

    /// The kind of Redis this is.
    pub fn mode(&self) -> RedisMode {
        self.mode
    }

    /// A URL a client can use as is: `redis://127.0.0.1:<port>` (a cluster's first node), or
    /// `rediss://default:<password>@localhost:<port>` for TLS. Serverless mode gives the bare
    /// `rediss://localhost:<port>`: clients authenticate with IAM tokens, or as `default`
    /// with [`Self::password`].
    pub fn url(&self) -> String {
        match self.mode {
            RedisMode::Tls => format!("rediss://default:{}@localhost:{}", self.password, self.port()),
            RedisMode::Serverless => format!("rediss://localhost:{}", self.port()),
            _ => format!("redis://127.0.0.1:{}", self.port()),
        }
    }

    /// The `requirepass` password (TLS and Serverless modes).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port clients use (a cluster's first node, the IAM proxy in Serverless mode).
    pub fn port(&self) -> u16 {
        match &self.proxy {
            Some(proxy) => proxy.port(),
            None => self.ports[0],
        }
    }

    /// IAM tokens the proxy accepted and refused (Serverless mode).
    pub fn iam_tokens(&self) -> Option<&TokenCounts> {
        self.proxy.as_ref().map(IamProxy::counts)
    }

    /// Blocks every node for `seconds` with `DEBUG SLEEP`, from background `redis-cli`s; the
    /// returned children end when the sleep does.
    pub fn block(&self, seconds: u32) -> Vec<Child> {
        self.ports
            .iter()
            .map(|port| {
                let mut cmd = Command::new(redis_cli());
                cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
                match self.mode {
                    RedisMode::Tls => {
                        cmd.args(["--tls", "--cacert"]).arg(test_ca_path()).args([
                            "--no-auth-warning",
                            "-a",
                            &self.password,
                        ]);
                    }
                    RedisMode::Serverless => {
                        cmd.args(["--no-auth-warning", "-a", &self.password]);
                    }
                    RedisMode::Plain | RedisMode::Cluster => {}
                }
                cmd.args(["DEBUG", "SLEEP", &seconds.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                spawn_owned(cmd).expect("cannot run redis-cli")
            })
            .collect()
    }

    /// Stops every node (connections are cut, data is lost).
    pub fn stop(&mut self) {
        for mut child in self.children.drain(..) {
            stop_child(&mut child, libc::SIGKILL, Duration::from_secs(5));
        }
    }

    /// Starts it again on the same ports, empty (a cluster keeps its slot map).
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.launch() {
            panic!("{e}");
        }
        if matches!(self.mode, RedisMode::Cluster | RedisMode::Serverless) {
            self.wait_cluster_ok();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
