//! Container-relative views of `/proc` and `/sys` files and of `sysinfo(2)`.
//!
//! This module owns *what* a container sees: it turns a container's cgroup
//! figures, its start time and the host's own files into the bytes of an
//! emulated file, or into `sysinfo(2)` figures. It never talks to seccomp and
//! never touches another process: the supervisor decides *when* to emulate,
//! this module decides *what*.
//!
//! INTERFACE CONTRACT (used by the supervisor; keep these signatures):
//! - [`EmulatedFile`]: the closed set of emulated files, with `host_path()`.
//! - [`ContainerSource::for_init_pid`]: build the per-container source when
//!   the container's init registers.
//! - [`ContainerSource::render`]: fresh bytes of one file, every call.
//! - [`ContainerSource::sysinfo`]: fresh `sysinfo(2)` figures.
//!
//! Additions (for tests and tools): [`ContainerSource::with_roots`] builds a
//! source from explicit host `/proc` and `/sys` roots, a located
//! [`crate::cgroup::Cgroup`], the init's start time and a [`Clock`].
//!
//! Layout: one module per emulated resource (`uptime`, `meminfo`,
//! `cpuinfo`, `stat`, `loadavg`, `swaps`, `diskstats`, `cpu_online`,
//! `sysinfo`), each a pure renderer from (host figures, cgroup figures,
//! clock) to bytes; `host` parses the host's files, `tasks` classifies the
//! container's tasks, `clock` gives time, and `source` ties them to one
//! container. Each module's documentation states the semantics it chose.

use std::path::PathBuf;

pub mod clock;
pub mod cpu_online;
pub mod cpuinfo;
pub mod diskstats;
pub mod host;
pub mod loadavg;
pub mod meminfo;
mod source;
pub mod stat;
pub mod swaps;
pub mod sysctl;
pub mod sysinfo;
pub mod tasks;
pub mod uptime;

#[cfg(test)]
mod tests;

/// Errors of building a container's view or rendering a file.
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed {path}: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("cgroup: {0}")]
    Cgroup(#[from] crate::cgroup::CgroupError),
}

/// Every file the supervisor emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EmulatedFile {
    Uptime,
    Meminfo,
    Cpuinfo,
    Stat,
    Loadavg,
    Swaps,
    Diskstats,
    CpuOnline,
    CpuPossible,
    CpuPresent,
}

impl EmulatedFile {
    /// All emulated files.
    pub const ALL: [EmulatedFile; 10] = [
        EmulatedFile::Uptime,
        EmulatedFile::Meminfo,
        EmulatedFile::Cpuinfo,
        EmulatedFile::Stat,
        EmulatedFile::Loadavg,
        EmulatedFile::Swaps,
        EmulatedFile::Diskstats,
        EmulatedFile::CpuOnline,
        EmulatedFile::CpuPossible,
        EmulatedFile::CpuPresent,
    ];

    /// Where the real file lives on a host (and in a container).
    pub fn host_path(self) -> &'static str {
        match self {
            EmulatedFile::Uptime => "/proc/uptime",
            EmulatedFile::Meminfo => "/proc/meminfo",
            EmulatedFile::Cpuinfo => "/proc/cpuinfo",
            EmulatedFile::Stat => "/proc/stat",
            EmulatedFile::Loadavg => "/proc/loadavg",
            EmulatedFile::Swaps => "/proc/swaps",
            EmulatedFile::Diskstats => "/proc/diskstats",
            EmulatedFile::CpuOnline => "/sys/devices/system/cpu/online",
            EmulatedFile::CpuPossible => "/sys/devices/system/cpu/possible",
            EmulatedFile::CpuPresent => "/sys/devices/system/cpu/present",
        }
    }

    /// Short name, used in memfd names, counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            EmulatedFile::Uptime => "uptime",
            EmulatedFile::Meminfo => "meminfo",
            EmulatedFile::Cpuinfo => "cpuinfo",
            EmulatedFile::Stat => "stat",
            EmulatedFile::Loadavg => "loadavg",
            EmulatedFile::Swaps => "swaps",
            EmulatedFile::Diskstats => "diskstats",
            EmulatedFile::CpuOnline => "cpu-online",
            EmulatedFile::CpuPossible => "cpu-possible",
            EmulatedFile::CpuPresent => "cpu-present",
        }
    }

    /// Inverse of [`EmulatedFile::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// `sysinfo(2)` figures, in the units of `struct sysinfo` with `mem_unit` 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SysinfoFigures {
    /// Seconds since the container's init started.
    pub uptime: i64,
    /// 1, 5 and 15 minute loads, fixed point with 16 fractional bits.
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    /// Number of tasks (threads) in the container.
    pub procs: u16,
}

pub use clock::Clock;
pub use source::{init_start_ns, ContainerSource};
