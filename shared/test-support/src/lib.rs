//! Real services for tests and benchmarks: `redis-server`, PostgreSQL, MariaDB and moto_server
//! (S3 + Secrets Manager) started on free
//! loopback ports in temporary directories, and stopped (by PID) when dropped.
//!
//! Children are spawned from one long-lived thread with `PR_SET_PDEATHSIG`, so the kernel kills
//! them if the test process dies without running destructors (a timeout, a SIGKILL).
//!
//! [`CpuQuota`] holds the process to a share of one core, to measure a small Lambda's CPU.

pub mod cpu_quota;
pub mod iam_proxy;
mod mariadb;
mod moto;
mod postgres;
mod process;
mod redis_server;
mod server;
mod silent_port;
pub mod stats;

pub use cpu_quota::CpuQuota;
pub use mariadb::MariaDb;
pub use moto::Moto;
pub use postgres::Postgres;
pub use process::{free_port, wait_for};
pub use redis_server::{test_ca_path, RedisMode, RedisServer};
pub use silent_port::SilentPort;

/// Path of a file relative to the workspace root (fixtures, SQL seeds).
pub fn workspace_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}
