//! One cgroup directory kept open: its files are opened once, relative to
//! a kept `O_PATH` directory fd, kept open, and re-read with `pread` at
//! offset 0 (which makes the kernel regenerate a `seq_file` / kernfs file)
//! into a reused buffer: one syscall per small file per read instead of
//! open, read, read, close.
//!
//! Kept-file semantics: a file is opened on its first read and kept; a file
//! missing at its first read is remembered as missing (optional files such
//! as `memory.memsw.*` cost nothing afterwards). When the cgroup is removed
//! (container gone) the kernel fails reads of the kept fds (`ENODEV`): an
//! error, never stale data. A regular file replaced or unlinked after its
//! first read (only possible in fixture trees) is not noticed; one rewritten
//! in place is.

use std::fs::File;
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::fs::FileExt as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{CgroupError, Result};

/// Upper bound on what one cgroup file read keeps (io.stat of a machine with
/// thousands of devices stays well below).
const MAX_FILE: u64 = 4 << 20;

/// The controller files kept open (any other name is opened per read).
const KEPT: [&str; 30] = [
    "memory.stat",
    "memory.usage_in_bytes",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "memory.memsw.usage_in_bytes",
    "memory.current",
    "memory.max",
    "memory.swap.max",
    "memory.swap.current",
    "cpuset.effective_cpus",
    "cpuset.cpus",
    "cpuset.cpus.effective",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.max",
    "cpu.stat",
    "cpuacct.usage",
    "cpuacct.stat",
    "cpuacct.usage_percpu",
    "io.stat",
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_serviced_recursive",
    "blkio.throttle.io_service_bytes",
    "blkio.throttle.io_serviced",
    "blkio.io_service_bytes_recursive",
    "blkio.io_serviced_recursive",
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.bfq.io_serviced_recursive",
    "tasks",
    "cgroup.threads",
];

/// How a kernel file ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Records {
    /// One record (`single_open` seq_files such as `/proc/meminfo`, kernfs
    /// files without `seq_next` such as `memory.stat`, sysfs attributes,
    /// regular files): a read with room to spare returned everything, so a
    /// short read is the end.
    One,
    /// Many records (`/proc/cpuinfo`, `/proc/diskstats`, `tasks`): a read
    /// stops whenever the kernel's page-sized buffer fills; only an empty
    /// read is the end.
    Many,
}

impl Records {
    /// The records kind of a cgroup file.
    pub(crate) fn of_cgroup_file(name: &str) -> Self {
        match name {
            "tasks" | "cgroup.threads" | "cgroup.procs" => Records::Many,
            _ => Records::One,
        }
    }
}

/// A file opened on first use and kept open, re-read from offset 0 with
/// `pread`. Reads are serialised (a multi-chunk read of a shared fd must not
/// interleave with another reader's restart at offset 0).
#[derive(Default)]
pub(crate) struct KeptFile {
    /// `None` inside: the file did not exist at its first read.
    file: OnceLock<Option<File>>,
    lock: Mutex<()>,
}

impl KeptFile {
    /// Read the whole file into `buf` (cleared first), opening it with
    /// `open` on first use. `Ok(false)`: it did not exist at its first use.
    pub(crate) fn read(
        &self,
        open: impl FnOnce() -> std::io::Result<Option<File>>,
        buf: &mut Vec<u8>,
        max: u64,
        records: Records,
    ) -> std::io::Result<bool> {
        buf.clear();
        let file = match self.file.get() {
            Some(f) => f,
            None => {
                // A failed open (not "missing") is not remembered: retried.
                let f = open()?;
                self.file.get_or_init(|| f)
            }
        };
        let Some(file) = file else {
            return Ok(false);
        };
        let _g = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        pread_kernel_file(file, buf, max, records)?;
        Ok(true)
    }
}

/// Open `path` read-only; `Ok(None)` when it does not exist.
pub(crate) fn open_opt(path: &Path) -> std::io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) struct CgDir {
    /// Full path, for errors, logs and walking children/parents.
    pub(crate) path: PathBuf,
    /// The hierarchy's mount point (under the configured root).
    pub(crate) mount: PathBuf,
    fd: OwnedFd,
    /// One slot per name of [`KEPT`].
    kept: [KeptFile; KEPT.len()],
}

impl CgDir {
    pub(crate) fn open(path: PathBuf, mount: PathBuf) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| CgroupError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(CgDir {
            path,
            mount,
            fd: OwnedFd::from(file),
            kept: std::array::from_fn(|_| KeptFile::default()),
        })
    }

    /// True when this directory is its hierarchy's root.
    pub(crate) fn is_root(&self) -> bool {
        self.path == self.mount
    }

    pub(crate) fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Read `name` into `buf` (cleared first). `Ok(false)` when it does not
    /// exist.
    pub(crate) fn read_opt(&self, name: &str, buf: &mut Vec<u8>) -> Result<bool> {
        let open = || crate::kernel::fs::open_read_at(self.fd.as_fd(), name);
        let records = Records::of_cgroup_file(name);
        let r = match KEPT.iter().position(|k| *k == name) {
            Some(i) => self.kept[i].read(open, buf, MAX_FILE, records),
            None => KeptFile::default().read(open, buf, MAX_FILE, records),
        };
        r.map_err(|source| CgroupError::Io {
            path: self.file_path(name),
            source,
        })
    }

    /// Read `name` into `buf`; a missing file is an error.
    pub(crate) fn read(&self, name: &str, buf: &mut Vec<u8>) -> Result<()> {
        if self.read_opt(name, buf)? {
            Ok(())
        } else {
            Err(CgroupError::Io {
                path: self.file_path(name),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })
        }
    }

    /// Read a file holding one unsigned number.
    pub(crate) fn read_u64(&self, name: &str, buf: &mut Vec<u8>) -> Result<u64> {
        self.read(name, buf)?;
        super::parse::parse_u64(buf).ok_or_else(|| self.malformed(name, "not a number"))
    }

    pub(crate) fn malformed(&self, name: &str, what: &str) -> CgroupError {
        CgroupError::Malformed {
            path: self.file_path(name),
            what: what.to_owned(),
        }
    }
}

/// Read a procfs, sysfs or cgroupfs file to its end into `buf` (appended),
/// at most `max` bytes, reading into the buffer's spare capacity (no
/// `fstat`/`lseek` size probing). Only an empty read is the end: a
/// multi-record `seq_file` (`/proc/cpuinfo`, `/proc/diskstats`, a cgroup's
/// `tasks`) returns short reads whenever its kernel buffer fills, long
/// before the end.
pub(crate) fn read_kernel_file(
    file: &mut File,
    buf: &mut Vec<u8>,
    max: u64,
) -> std::io::Result<()> {
    // A file just opened reads the same by position as by `read`.
    pread_kernel_file(file, buf, max, Records::Many)
}

/// Read a kernel file through a kept fd to its end into `buf` (appended),
/// at most `max` bytes: the first `pread` at offset 0 makes a `seq_file`
/// start over and regenerate its content (`seq_read_iter` resets its
/// iterator when the position is 0), later ones continue at increasing
/// offsets. See [`Records`] for where it ends.
pub(crate) fn pread_kernel_file(
    file: &File,
    buf: &mut Vec<u8>,
    max: u64,
    records: Records,
) -> std::io::Result<()> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let start = buf.len();
    loop {
        let have = buf.len() - start;
        if have >= max {
            return Ok(());
        }
        let want = buf
            .capacity()
            .saturating_sub(buf.len())
            .max(4096)
            .min(max - have);
        let at = buf.len();
        buf.resize(at + want, 0);
        let n = match file.read_at(&mut buf[at..], have as u64) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                buf.truncate(at);
                continue;
            }
            Err(e) => {
                buf.truncate(at);
                return Err(e);
            }
        };
        buf.truncate(at + n);
        if n == 0 || (records == Records::One && n < want) {
            return Ok(());
        }
    }
}

/// Collect the tids listed in `file` of `dir` and of every descendant
/// directory (depth-limited) into `out`.
pub(crate) fn collect_tasks(
    dir: &CgDir,
    file: &str,
    buf: &mut Vec<u8>,
    out: &mut Vec<u32>,
) -> Result<()> {
    dir.read(file, buf)?;
    push_tids(buf, &dir.file_path(file), out)?;
    let mut budget = MAX_DESCENDANTS;
    walk_children(&dir.path, file, buf, out, 0, &mut budget)?;
    if budget == 0 {
        tracing::debug!(cgroup = %dir.path.display(), "cgroup has too many descendants; tasks counted from the first ones");
    }
    Ok(())
}

/// Bounds on the descendant walk: a container that may create cgroups
/// (delegated to its systemd) cannot make a read walk without end.
const MAX_DEPTH: u32 = 32;
const MAX_DESCENDANTS: u32 = 4096;

fn push_tids(buf: &[u8], path: &Path, out: &mut Vec<u32>) -> Result<()> {
    for line in super::parse::lines(buf) {
        let tid = super::parse::parse_u64(line)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| CgroupError::Malformed {
                path: path.to_owned(),
                what: "task id is not a number".to_owned(),
            })?;
        out.push(tid);
    }
    Ok(())
}

fn walk_children(
    path: &Path,
    file: &str,
    buf: &mut Vec<u8>,
    out: &mut Vec<u32>,
    depth: u32,
    budget: &mut u32,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        // The cgroup went away between reads: nothing more to count.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir {
            continue;
        }
        if *budget == 0 {
            return Ok(());
        }
        *budget -= 1;
        let child = entry.path();
        let tasks_path = child.join(file);
        buf.clear();
        match File::open(&tasks_path).and_then(|mut f| read_kernel_file(&mut f, buf, MAX_FILE)) {
            Ok(_) => push_tids(buf, &tasks_path, out)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CgroupError::Io {
                    path: tasks_path,
                    source,
                })
            }
        }
        walk_children(&child, file, buf, out, depth + 1, budget)?;
    }
    Ok(())
}
