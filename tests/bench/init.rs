//! Cold start: each function's binary from process start to its first
//! `GET /2018-06-01/runtime/invocation/next` on a stand-in Runtime API (what Lambda reports as
//! Init Duration), under two configurations, plus the binary's size. The stand-in never answers,
//! so the process is measured up to the moment it is ready and then killed.
//!
//! cargo run --profile bench -p integration-tests --bin bench -- init [--runs 20] [--dir target/release]

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::stats::{summarize, table_row, Summary, TABLE_HEADER};
use test_support::{test_ca_path, Moto, RedisMode, RedisServer};

const FUNCTIONS: [&str; 3] = ["query-api", "ingester", "invalidator"];

struct InitArgs {
    runs: usize,
    dir: PathBuf,
}

fn parse(args: &[String]) -> Result<InitArgs, String> {
    let usage = "usage: bench init [--runs N (20)] [--dir DIR (target/release)]";
    let mut parsed = InitArgs {
        runs: 20,
        dir: PathBuf::from("target/release"),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value; {usage}"))?;
        match flag.as_str() {
            "--runs" => {
                parsed.runs = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or(format!("--runs must be 1..=1000; {usage}"))?
            }
            "--dir" => parsed.dir = value.into(),
            other => return Err(format!("unknown argument {other:?}; {usage}")),
        }
    }
    Ok(parsed)
}

/// Time from spawn to the first `/next` poll, or why the process never got there.
fn time_to_first_poll(binary: &Path, env: &HashMap<String, String>) -> Result<Duration, String> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let api = listener.local_addr().map_err(|e| e.to_string())?.to_string();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let outcome = loop {
        match listener.accept() {
            Ok((mut socket, _)) => {
                let elapsed = started.elapsed();
                let _ = socket.set_nonblocking(false);
                let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = [0u8; 128];
                let n = socket.read(&mut head).unwrap_or(0);
                let line = String::from_utf8_lossy(&head[..n]);
                break if line.contains("/runtime/invocation/next") {
                    Ok(elapsed)
                } else {
                    Err(format!("unexpected first request: {line:?}"))
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut stderr = String::new();
                    if let Some(mut err) = child.stderr.take() {
                        let _ = err.read_to_string(&mut stderr);
                    }
                    break Err(format!("exited ({status}) before polling: {stderr}"));
                }
                if started.elapsed() > Duration::from_secs(10) {
                    break Err("no poll within 10 s".into());
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// The environment Lambda gives every function, plus ours.
fn lambda_env(function: &str, extra: &[(&str, String)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "init-bench".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "init-bench".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("CACHE_NAMESPACE", "init-bench".to_owned()),
        ("DATABASE_URL", "postgres://user:pw@127.0.0.1:9/db".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    env
}

/// Time of the first PING on a new TLS connection (TCP, TLS handshake, AUTH) and of a second
/// one on the same connection, `runs` times: what opening the connection during init would
/// move out of the first request.
async fn tls_connect_cost(redis: &RedisServer, runs: usize) -> Result<[(String, Summary); 2], String> {
    let target = cache_aside::RedisTarget {
        url: redis.url(),
        ca_pem: Some(std::fs::read(test_ca_path()).map_err(|e| e.to_string())?),
        ..cache_aside::RedisTarget::default()
    };
    let (mut first, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let store = cache_aside::RedisStore::connect_lazy(&target, &cache_aside::CacheSettings::default())
            .map_err(|e| e.to_string())?;
        first.push(store.ping().await.map_err(|e| e.to_string())?);
        warm.push(store.ping().await.map_err(|e| e.to_string())?);
    }
    Ok([
        ("first PING, new TLS connection".to_owned(), summarize(&mut first)),
        ("PING, open connection".to_owned(), summarize(&mut warm)),
    ])
}

pub async fn run(args: &[String]) -> Result<(), String> {
    let args = parse(args)?;
    eprintln!("starting a TLS redis-server and moto_server on loopback ...");
    let redis = RedisServer::start_mode(RedisMode::Tls);
    let moto = Moto::start();
    let tls = [
        ("REDIS_URL", redis.url()),
        ("REDIS_CA_PATH", test_ca_path().display().to_string()),
    ];
    let mut with_aws: Vec<(&str, String)> = tls.to_vec();
    with_aws.extend(moto.env());
    with_aws.push(("OBJECTS_BUCKET", "init-bench".to_owned()));
    with_aws.push(("RESTAURANTS_TABLE", "init-bench".to_owned()));
    let configurations: [(&str, &[(&str, String)]); 2] = [
        ("Redis over TLS", &tls),
        ("+ S3 bucket, DynamoDB table (AWS SDK config)", &with_aws),
    ];
    let mut table = format!(
        "Init duration (process start → first /next poll), {} runs each, release build on this machine\n\n| function | stripped size (bytes) |\n|---|---:|\n",
        args.runs
    );
    for function in FUNCTIONS {
        let size = std::fs::metadata(args.dir.join(function))
            .map(|m| m.len())
            .unwrap_or(0);
        table.push_str(&format!("| {function} | {size} |\n"));
    }
    table.push_str(&format!("\n{TABLE_HEADER}\n"));
    for function in FUNCTIONS {
        let binary = args.dir.join(function);
        if !binary.exists() {
            return Err(format!(
                "{} is missing: cargo build --release -p {function}",
                binary.display()
            ));
        }
        for (label, extra) in configurations {
            let env = lambda_env(function, extra);
            let mut samples = Vec::with_capacity(args.runs);
            for i in 0..args.runs {
                eprint!("\r{function}, {label}: {}/{}   ", i + 1, args.runs);
                samples.push(time_to_first_poll(&binary, &env)?);
            }
            eprintln!();
            table.push_str(&table_row(
                &format!("{function}: {label}"),
                &summarize(&mut samples),
            ));
            table.push('\n');
        }
    }
    table.push_str("\nRedis over TLS on loopback\n\n");
    table.push_str(TABLE_HEADER);
    table.push('\n');
    for (label, summary) in tls_connect_cost(&redis, args.runs).await? {
        table.push_str(&table_row(&label, &summary));
        table.push('\n');
    }
    println!("\n{table}");
    Ok(())
}
