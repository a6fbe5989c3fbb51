//! The current process held to a share of one core: a fresh cgroup with a CFS quota, entered by
//! the whole process (every thread) and left again when dropped.
//!
//! Lambda gives a function CPU in proportion to its memory, one vCPU at 1,769 MB, so a 128 MB
//! function gets about 1/14 of a core. A bench on a full core can only estimate what that does
//! to a request; `CpuQuota::enter(14)` measures it. The quota is handed out per 100 ms period:
//! full speed until the period's share is spent, then nothing until the next one, so the waits
//! show in the high percentiles rather than as an even slowdown.
//!
//! Both cgroup layouts work: v2 (a `cgroup2` mount whose `cgroup.controllers` lists `cpu`;
//! `cpu.max`) and v1 (a `cgroup` mount of the `cpu` controller; `cpu.cfs_quota_us`). Creating a
//! cgroup and moving a process into it needs root. Children spawned while the quota is entered
//! start in its cgroup and share its quota. A process killed inside leaves an empty cgroup
//! directory behind (`cache-aside-quota-<pid>-<n>`), which `rmdir` removes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The CFS period, µs: 100 ms, the kernel's default.
const PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, µs.
const MIN_QUOTA_US: u64 = 1_000;

/// Numbers the cgroups one process creates, so each section gets fresh counters.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Which cgroup interface the quota goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The unified hierarchy: `cpu.max`, `throttled_usec`.
    V2,
    /// The v1 `cpu` hierarchy: `cpu.cfs_quota_us`, `throttled_time` (ns).
    V1,
}

/// The current process under a CPU quota of 1/D of a core, until dropped.
#[derive(Debug)]
pub struct CpuQuota {
    layout: Layout,
    /// The cgroup created for the quota.
    dir: PathBuf,
    /// The cgroup the process came from, in the same hierarchy: where `Drop` puts it back.
    origin: PathBuf,
}

impl CpuQuota {
    /// Moves this process (all its threads) into a fresh cgroup allowed `100 ms / denominator`
    /// of CPU per 100 ms period. The error says what is missing (root, a cpu controller).
    pub fn enter(denominator: u32) -> Result<CpuQuota, String> {
        if denominator == 0 {
            return Err("a CPU quota of 1/0 of a core: the denominator must be at least 1".into());
        }
        let quota_us = PERIOD_US / u64::from(denominator);
        if quota_us < MIN_QUOTA_US {
            return Err(format!(
                "1/{denominator} of a {} ms period is under the kernel's 1 ms minimum quota",
                PERIOD_US / 1000
            ));
        }
        let (layout, mount) = hierarchy()?;
        let origin = dir_of(
            &mount,
            &current_cgroup(match layout {
                Layout::V2 => None,
                Layout::V1 => Some("cpu"),
            })?,
        );
        if !origin.join("cgroup.procs").exists() {
            return Err(format!(
                "this process's cgroup is not where /proc/self/cgroup says: no {}",
                origin.join("cgroup.procs").display()
            ));
        }
        // v2 hands a controller only to children of the root or of a cgroup without processes,
        // so the quota's cgroup hangs off the hierarchy's root there; v1 nests it under the
        // current cgroup, keeping any limit set above.
        let parent = match layout {
            Layout::V2 => mount.point.clone(),
            Layout::V1 => origin.clone(),
        };
        if layout == Layout::V2 {
            enable_cpu(&parent)?;
        }
        let dir = parent.join(format!(
            "cache-aside-quota-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::create_dir(&dir) {
            Ok(()) => {}
            // Left by an earlier process with this pid; a cgroup is reused as it is.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed("create", &dir, &e)),
        }
        // From here on, dropping `quota` removes the directory (moving back is a no-op before the
        // move in).
        let quota = CpuQuota { layout, dir, origin };
        match layout {
            Layout::V2 => write(&quota.dir.join("cpu.max"), &format!("{quota_us} {PERIOD_US}"))?,
            Layout::V1 => {
                write(&quota.dir.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&quota.dir.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
            }
        }
        // cgroup.procs (not `tasks`) moves every thread of the process at once.
        write(&quota.dir.join("cgroup.procs"), &std::process::id().to_string())?;
        Ok(quota)
    }

    /// How often the quota stopped the cgroup and for how long in all, from its `cpu.stat`
    /// (`nr_throttled` and v1 `throttled_time` or v2 `throttled_usec`); `None` if unreadable.
    /// Zero throttles means the section never used its share and the quota did not bite.
    pub fn throttled(&self) -> Option<(u64, Duration)> {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        let field = |name: &str| {
            stat.lines().find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        };
        let count = field("nr_throttled")?;
        let time = match self.layout {
            Layout::V2 => Duration::from_micros(field("throttled_usec")?),
            Layout::V1 => Duration::from_nanos(field("throttled_time")?),
        };
        Some((count, time))
    }
}

impl Drop for CpuQuota {
    /// Puts the process back where it came from and removes the quota's cgroup.
    fn drop(&mut self) {
        let procs = self.origin.join("cgroup.procs");
        if let Err(e) = write(&procs, &std::process::id().to_string()) {
            eprintln!("CpuQuota: the process stays under its CPU quota: {e}");
        }
        // rmdir fails (EBUSY) while a task is left, such as a child spawned inside still exiting.
        const ATTEMPTS: u32 = 50;
        for attempt in 1..=ATTEMPTS {
            match fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) if attempt == ATTEMPTS => {
                    eprintln!("CpuQuota: cannot remove {}: {e}", self.dir.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// A cgroup mount from /proc/self/mountinfo.
#[derive(Debug, Clone)]
struct Mount {
    /// The cgroup shown at the mount point (usually `/`; a container may mount a subtree).
    root: PathBuf,
    point: PathBuf,
    /// `cgroup` (v1) or `cgroup2`.
    fstype: String,
    /// Super options; for v1 they name the hierarchy's controllers, e.g. `rw,cpu,cpuacct`.
    options: String,
}

/// The hierarchy that offers the `cpu` controller: a v2 mount listing it, else a v1 `cpu` mount.
fn hierarchy() -> Result<(Layout, Mount), String> {
    let mounts = cgroup_mounts()?;
    let listed = |path: PathBuf| {
        fs::read_to_string(path).is_ok_and(|list| list.split_whitespace().any(|c| c == "cpu"))
    };
    if let Some(m) = mounts
        .iter()
        .find(|m| m.fstype == "cgroup2" && listed(m.point.join("cgroup.controllers")))
    {
        return Ok((Layout::V2, m.clone()));
    }
    if let Some(m) = mounts
        .iter()
        .find(|m| m.fstype == "cgroup" && m.options.split(',').any(|o| o == "cpu"))
    {
        return Ok((Layout::V1, m.clone()));
    }
    Err(
        "no cpu controller: /proc/self/mountinfo shows neither a cgroup2 mount whose \
         cgroup.controllers lists cpu nor a cgroup v1 mount of cpu"
            .into(),
    )
}

/// The cgroup and cgroup2 mounts of this process's mount namespace.
fn cgroup_mounts() -> Result<Vec<Mount>, String> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    // `id parent major:minor root point options [optional fields] - fstype source super-options`
    let mount = |line: &str| {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let options = right.nth(1)?;
        Some(Mount {
            root: unescape(left.get(3)?).into(),
            point: unescape(left.get(4)?).into(),
            fstype: fstype.to_owned(),
            options: options.to_owned(),
        })
    };
    Ok(text
        .lines()
        .filter_map(mount)
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .collect())
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// This process's cgroup as /proc/self/cgroup names it: in the v1 hierarchy holding
/// `controller`, or with `None` in the unified (v2) one.
fn current_cgroup(controller: Option<&str>) -> Result<String, String> {
    let text =
        fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
    text.lines()
        .find_map(|line| {
            // `hierarchy-id:controllers:path`; the path may hold colons.
            let mut parts = line.splitn(3, ':');
            let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = match controller {
                Some(c) => controllers.split(',').any(|x| x == c),
                None => id == "0" && controllers.is_empty(),
            };
            matches.then(|| path.to_owned())
        })
        .ok_or(format!(
            "/proc/self/cgroup lists no {} hierarchy",
            controller.unwrap_or("unified")
        ))
}

/// The directory of cgroup `path` (as /proc/self/cgroup names it) under `mount`.
fn dir_of(mount: &Mount, path: &str) -> PathBuf {
    let path = Path::new(path);
    let relative = path.strip_prefix(&mount.root).unwrap_or(path);
    let relative = relative.strip_prefix("/").unwrap_or(relative);
    if relative.as_os_str().is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(relative)
    }
}

/// Lets the children of v2 cgroup `parent` have the `cpu` controller (left on afterwards).
fn enable_cpu(parent: &Path) -> Result<(), String> {
    let control = parent.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).map_err(|e| failed("read", &control, &e))?;
    if enabled.split_whitespace().any(|c| c == "cpu") {
        return Ok(());
    }
    write(&control, "+cpu").map_err(|e| {
        format!(
            "{e} (cgroup v2 hands a controller to children only of the root or of a cgroup \
             without processes)"
        )
    })
}

/// Writes `value` into a cgroup file.
fn write(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| failed("write", path, &e))
}

/// What failed, and the likely reason when the kernel's answer points at one.
fn failed(action: &str, path: &Path, e: &io::Error) -> String {
    let mut message = format!("cannot {action} {}: {e}", path.display());
    if e.kind() == io::ErrorKind::PermissionDenied && !crate::postgres::is_root() {
        message.push_str("; a CPU quota needs root (creating a cgroup and moving a process into it)");
    } else if e.raw_os_error() == Some(libc::EROFS) {
        message.push_str("; the cgroup filesystem is mounted read-only (a container without cgroup access?)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_under_a_mount() {
        let mount = |root: &str| Mount {
            root: root.into(),
            point: "/sys/fs/cgroup/cpu".into(),
            fstype: "cgroup".into(),
            options: "rw,cpu,cpuacct".into(),
        };
        assert_eq!(dir_of(&mount("/"), "/"), Path::new("/sys/fs/cgroup/cpu"));
        assert_eq!(dir_of(&mount("/"), "/a/b"), Path::new("/sys/fs/cgroup/cpu/a/b"));
        assert_eq!(
            dir_of(&mount("/docker/x"), "/docker/x/b"),
            Path::new("/sys/fs/cgroup/cpu/b")
        );
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape(r"/plain\x"), r"/plain\x");
    }
}
