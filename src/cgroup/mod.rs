//! cgroup v1 and v2 readers behind one view of a container's limits and usage.
//!
//! This module owns *where* a process's cgroup is and *what* it says:
//! [`Cgroup::for_pid`] finds the cgroup directories of a process (from the
//! host's `/proc/self/mountinfo` and `/proc/<pid>/cgroup`), keeps a directory
//! fd for each, and the readers ([`Cgroup::memory`], [`Cgroup::cpu`],
//! [`Cgroup::blkio`], [`Cgroup::tasks`]) turn the controller files of either
//! cgroup version into one model ([`CgroupStats`]). Everything is read from a
//! configurable root so that tests run on fixture trees.
//!
//! Nesting: the cgroup used is the one of the pid given (the container's
//! init). Figures are hierarchical (they include the cgroup's children) and
//! limits are the effective ones (the minimum over the cgroup and its
//! ancestors), so a later "innermost cgroup wins" lookup only has to pass
//! another pid.

mod dir;
mod locate;
pub mod parse;
mod v1;
mod v2;

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub(crate) use dir::{open_opt, read_kernel_file, KeptFile, Records};
pub use locate::{parse_mountinfo, parse_proc_cgroup, CgroupMount, ProcCgroupLine};
pub(crate) use v1::split_ratio;

/// Errors of locating or reading a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {path}: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("no cgroup v1 memory hierarchy nor cgroup v2 mount in {mountinfo}")]
    NoHierarchy { mountinfo: PathBuf },
    #[error("cgroup controller {controller} is not mounted or not in {proc_cgroup}")]
    NoController {
        controller: &'static str,
        proc_cgroup: PathBuf,
    },
    #[error("cgroup path {cgroup_path} of {proc_cgroup} is outside its mount's root {mount_root}")]
    OutsideMount {
        cgroup_path: String,
        mount_root: String,
        proc_cgroup: PathBuf,
    },
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, CgroupError>;

/// Which cgroup version a [`Cgroup`] was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Byte values at or above this are "no limit": cgroup v1 writes
/// `PAGE_COUNTER_MAX * PAGE_SIZE` (9223372036854771712 with 4 KiB pages,
/// 9223372036854710272 with 64 KiB pages). No real limit comes near 4 EiB.
pub const UNLIMITED_THRESHOLD: u64 = 1 << 62;

/// Turn a byte limit into `Some(limit)`, or `None` when it means "no limit".
pub fn limit_from_bytes(v: u64) -> Option<u64> {
    (v < UNLIMITED_THRESHOLD).then_some(v)
}

/// Swap accounting of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwapStats {
    /// Swap the cgroup may use, in bytes (`None`: no limit). v1: the
    /// `memory.memsw` limit minus the memory limit; v2: `memory.swap.max`.
    pub limit: Option<u64>,
    /// Swap in use, in bytes.
    pub usage: u64,
}

/// Memory figures of a cgroup, in bytes, hierarchical (children included).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryStats {
    /// Effective limit: the minimum over the cgroup and its ancestors.
    /// `None`: unlimited.
    pub limit: Option<u64>,
    /// Charged memory (v1 `memory.usage_in_bytes`, v2 `memory.current`),
    /// page cache included.
    pub usage: u64,
    /// Page cache, shmem included (v1 `cache`, v2 `file`).
    pub cache: u64,
    /// Anonymous memory, shmem excluded (v1 `rss`, v2 `anon`).
    pub rss: u64,
    pub shmem: u64,
    pub mapped_file: u64,
    pub dirty: u64,
    pub writeback: u64,
    pub active_anon: u64,
    pub inactive_anon: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub unevictable: u64,
    /// Kernel figures that only v2 breaks down per cgroup.
    pub slab_reclaimable: Option<u64>,
    pub slab_unreclaimable: Option<u64>,
    pub kernel_stack: Option<u64>,
    pub pagetables: Option<u64>,
    /// `None`: the kernel does no swap accounting for this cgroup.
    pub swap: Option<SwapStats>,
}

/// A CFS bandwidth limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

impl CpuQuota {
    /// Number of whole CPUs the quota amounts to, rounded up, at least 1.
    pub fn cpus(&self) -> u32 {
        if self.period_us == 0 {
            return u32::MAX;
        }
        let n = self.quota_us.div_ceil(self.period_us).max(1);
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// CPU figures of a cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuStats {
    /// Host CPU numbers the cgroup may run on (`None`: no cpuset controller,
    /// i.e. every online CPU).
    pub cpuset: Option<Vec<u32>>,
    /// CFS quota (`None`: no limit).
    pub quota: Option<CpuQuota>,
    /// Total CPU time used, in nanoseconds.
    pub usage_ns: u64,
    /// Split of `usage_ns` into user and system time (they sum to it).
    pub user_ns: u64,
    pub system_ns: u64,
    /// Per host CPU usage in nanoseconds, indexed by host CPU number (v1
    /// `cpuacct.usage_percpu`; v2 has none).
    pub per_cpu_ns: Option<Vec<u64>>,
}

/// How much of [`CpuStats`] to read: each file costs a syscall round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuDetail {
    /// `cpuset` and `quota` only.
    Limits,
    /// Also `usage_ns` (counted all as user time).
    Usage,
    /// Also the user/system split and the per-CPU usage.
    Full,
}

/// Block I/O of a cgroup on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlkioDevice {
    pub major: u32,
    pub minor: u32,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
    pub discard_bytes: u64,
    pub discards: u64,
}

/// Everything the emulated files need from a cgroup, in one model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupStats {
    pub memory: MemoryStats,
    pub cpu: CpuStats,
    pub blkio: Vec<BlkioDevice>,
    /// Host tids of every task (thread) in the cgroup and its descendants,
    /// sorted.
    pub tasks: Vec<u32>,
}

enum Inner {
    V1(Box<v1::V1>),
    V2(Box<v2::V2>),
}

/// The cgroup of one process: directory fds on each hierarchy it is in.
pub struct Cgroup {
    inner: Inner,
}

impl std::fmt::Debug for Cgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::V1(v) => f.debug_tuple("Cgroup::V1").field(&v.describe()).finish(),
            Inner::V2(v) => f.debug_tuple("Cgroup::V2").field(&v.describe()).finish(),
        }
    }
}

impl Cgroup {
    /// The cgroup of host pid `pid`, as seen from the host (`/proc`, `/`).
    pub fn for_pid(pid: i32) -> Result<Self> {
        Self::for_pid_in(Path::new("/proc"), Path::new("/"), pid)
    }

    /// The cgroup of `pid`, reading `<proc_root>/self/mountinfo` and
    /// `<proc_root>/<pid>/cgroup`, with mount points taken relative to
    /// `fs_root` (`/` on a host; a fixture directory in tests).
    pub fn for_pid_in(proc_root: &Path, fs_root: &Path, pid: i32) -> Result<Self> {
        let mountinfo_path = proc_root.join("self/mountinfo");
        let cgroup_path = proc_root.join(format!("{pid}/cgroup"));
        let mountinfo = read_whole(&mountinfo_path)?;
        let cgroup = read_whole(&cgroup_path)?;
        locate::locate(&mountinfo, &mountinfo_path, &cgroup, &cgroup_path, fs_root)
    }

    /// Build from the text of a mountinfo and of a `/proc/<pid>/cgroup`,
    /// mount points taken relative to `fs_root`.
    pub fn from_texts(mountinfo: &[u8], proc_cgroup: &[u8], fs_root: &Path) -> Result<Self> {
        locate::locate(
            mountinfo,
            Path::new("mountinfo"),
            proc_cgroup,
            Path::new("proc-cgroup"),
            fs_root,
        )
    }

    /// The cgroup version in use.
    pub fn version(&self) -> Version {
        match self.inner {
            Inner::V1(_) => Version::V1,
            Inner::V2(_) => Version::V2,
        }
    }

    /// True when the process sits in the root cgroup of every hierarchy
    /// (a host process: its figures are the host's).
    pub fn is_root(&self) -> bool {
        match &self.inner {
            Inner::V1(v) => v.is_root(),
            Inner::V2(v) => v.is_root(),
        }
    }

    /// Memory figures. `buf` is a scratch buffer reused between reads.
    pub fn memory(&self, buf: &mut Vec<u8>) -> Result<MemoryStats> {
        match &self.inner {
            Inner::V1(v) => v.memory(buf),
            Inner::V2(v) => v.memory(buf),
        }
    }

    /// CPU figures, all of them.
    pub fn cpu(&self, buf: &mut Vec<u8>) -> Result<CpuStats> {
        self.cpu_detail(buf, CpuDetail::Full)
    }

    /// CPU figures, reading only the files `detail` needs (the fields it
    /// does not cover are left at their defaults).
    pub fn cpu_detail(&self, buf: &mut Vec<u8>, detail: CpuDetail) -> Result<CpuStats> {
        match &self.inner {
            Inner::V1(v) => v.cpu(buf, detail),
            Inner::V2(v) => v.cpu(buf, detail),
        }
    }

    /// Block I/O per device (empty when the controller is not available).
    pub fn blkio(&self, buf: &mut Vec<u8>) -> Result<Vec<BlkioDevice>> {
        match &self.inner {
            Inner::V1(v) => v.blkio(buf),
            Inner::V2(v) => v.blkio(buf),
        }
    }

    /// Host tids of every task in the cgroup and its descendants, sorted,
    /// into `out` (cleared first).
    pub fn tasks(&self, buf: &mut Vec<u8>, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        match &self.inner {
            Inner::V1(v) => v.tasks(buf, out)?,
            Inner::V2(v) => v.tasks(buf, out)?,
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }

    /// All figures at once.
    pub fn stats(&self) -> Result<CgroupStats> {
        let mut buf = Vec::with_capacity(4096);
        let mut tasks = Vec::new();
        self.tasks(&mut buf, &mut tasks)?;
        Ok(CgroupStats {
            memory: self.memory(&mut buf)?,
            cpu: self.cpu(&mut buf)?,
            blkio: self.blkio(&mut buf)?,
            tasks,
        })
    }
}

fn read_whole(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| CgroupError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parse `key value` lines of a flat-keyed cgroup file, calling `f` for each.
pub(crate) fn for_each_kv<'a>(buf: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) {
    for line in parse::lines(buf) {
        let (k, v) = parse::split_key(line);
        f(k, v);
    }
}

/// Find or insert the device `major:minor` in `devs`.
pub(crate) fn device_entry(
    devs: &mut Vec<BlkioDevice>,
    major: u32,
    minor: u32,
) -> &mut BlkioDevice {
    let idx = match devs
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(i) => i,
        None => {
            devs.push(BlkioDevice {
                major,
                minor,
                ..BlkioDevice::default()
            });
            devs.len() - 1
        }
    };
    &mut devs[idx]
}

/// Parse `major:minor`.
pub(crate) fn parse_devno(s: &[u8]) -> Option<(u32, u32)> {
    let i = s.iter().position(|&c| c == b':')?;
    let major = u32::try_from(parse::parse_u64(&s[..i])?).ok()?;
    let minor = u32::try_from(parse::parse_u64(&s[i + 1..])?).ok()?;
    Some((major, minor))
}
