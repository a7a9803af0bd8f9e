//! The host's own files: reading them into a reused buffer and parsing the
//! few figures the renderers need (`/proc/meminfo` values, `/proc/stat`
//! lines, `/proc/cpuinfo` stanzas, `/proc/diskstats` lines, the online cpu
//! list). Everything works on byte slices without per-line allocation.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::EmulateError;
use crate::cgroup::parse::{parse_cpulist, parse_u64};

/// Largest host file we read (`/proc/cpuinfo` of a 1024-cpu machine is
/// about 1.5 MiB).
const MAX_HOST_FILE: u64 = 16 << 20;

/// Read `path` into `buf` (cleared first).
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<(), EmulateError> {
    buf.clear();
    File::open(path)
        .and_then(|mut f| crate::cgroup::read_kernel_file(&mut f, buf, MAX_HOST_FILE))
        .map_err(|source| EmulateError::Io {
            path: path.to_owned(),
            source,
        })
}

pub(crate) fn malformed(path: &Path, what: &str) -> EmulateError {
    EmulateError::Malformed {
        path: path.to_owned(),
        what: what.to_owned(),
    }
}

/// The paths of the host files, built once.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub proc_root: PathBuf,
    pub meminfo: PathBuf,
    pub cpuinfo: PathBuf,
    pub stat: PathBuf,
    pub diskstats: PathBuf,
    pub swaps: PathBuf,
    pub loadavg: PathBuf,
    pub cpu_online: PathBuf,
}

impl HostPaths {
    pub fn new(host_proc: &Path, host_sys: &Path) -> Self {
        HostPaths {
            proc_root: host_proc.to_owned(),
            meminfo: host_proc.join("meminfo"),
            cpuinfo: host_proc.join("cpuinfo"),
            stat: host_proc.join("stat"),
            diskstats: host_proc.join("diskstats"),
            swaps: host_proc.join("swaps"),
            loadavg: host_proc.join("loadavg"),
            cpu_online: host_sys.join("devices/system/cpu/online"),
        }
    }
}

/// The host files a render reads, kept open (see [`HostFiles`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFile {
    Meminfo,
    Cpuinfo,
    Stat,
    Diskstats,
    Swaps,
    Loadavg,
    CpuOnline,
}

/// The host's files, each opened on first use, kept open and re-read with
/// `pread` at offset 0 (the kernel regenerates a `seq_file` read at offset
/// 0): one `pread` per small file per render instead of open, read, read,
/// close. The default roots (`/proc`, `/sys`) share one process-wide set
/// ([`HostFiles::shared_default`]); reads of one file are serialised.
pub struct HostFiles {
    pub paths: HostPaths,
    kept: [crate::cgroup::KeptFile; 7],
}

impl std::fmt::Debug for HostFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostFiles")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl HostFiles {
    pub fn new(paths: HostPaths) -> Self {
        HostFiles {
            paths,
            kept: std::array::from_fn(|_| crate::cgroup::KeptFile::default()),
        }
    }

    /// The set for the host's own `/proc` and `/sys`, shared by every
    /// container of the process.
    pub fn shared_default() -> Arc<Self> {
        static SHARED: OnceLock<Arc<HostFiles>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                Arc::new(HostFiles::new(HostPaths::new(
                    Path::new("/proc"),
                    Path::new("/sys"),
                )))
            })
            .clone()
    }

    pub fn path(&self, f: HostFile) -> &Path {
        let p = &self.paths;
        match f {
            HostFile::Meminfo => &p.meminfo,
            HostFile::Cpuinfo => &p.cpuinfo,
            HostFile::Stat => &p.stat,
            HostFile::Diskstats => &p.diskstats,
            HostFile::Swaps => &p.swaps,
            HostFile::Loadavg => &p.loadavg,
            HostFile::CpuOnline => &p.cpu_online,
        }
    }

    /// Fresh content of `f` into `buf` (cleared first). A file missing at
    /// its first read stays an error.
    pub fn read(&self, f: HostFile, buf: &mut Vec<u8>) -> Result<(), EmulateError> {
        use crate::cgroup::Records;
        let path = self.path(f);
        let records = match f {
            // Multi-record seq_files: short reads long before the end.
            HostFile::Cpuinfo | HostFile::Diskstats | HostFile::Swaps => Records::Many,
            // single_open seq_files and a sysfs attribute.
            HostFile::Meminfo | HostFile::Stat | HostFile::Loadavg | HostFile::CpuOnline => {
                Records::One
            }
        };
        let io = |source| EmulateError::Io {
            path: path.to_owned(),
            source,
        };
        let found = self.kept[f as usize]
            .read(
                || crate::cgroup::open_opt(path),
                buf,
                MAX_HOST_FILE,
                records,
            )
            .map_err(io)?;
        if found {
            Ok(())
        } else {
            Err(io(std::io::Error::from(std::io::ErrorKind::NotFound)))
        }
    }
}

/// Split a meminfo line into its key (without the colon) and its value in
/// kB (or plain count for the `HugePages_*` lines). `None` for lines that do
/// not have this shape.
pub fn meminfo_line(line: &[u8]) -> Option<(&[u8], u64)> {
    let colon = memchr::memchr(b':', line)?;
    let rest = line[colon + 1..].trim_ascii();
    let num = rest.strip_suffix(b" kB").unwrap_or(rest);
    Some((&line[..colon], parse_u64(num)?))
}

/// The host `/proc/meminfo` figures the container's view depends on, in kB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostMeminfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub shmem: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub mlocked: u64,
}

impl HostMeminfo {
    /// Parse the host's meminfo. `MemTotal` and `MemFree` are required.
    pub fn parse(buf: &[u8], path: &Path) -> Result<Self, EmulateError> {
        let mut h = HostMeminfo::default();
        let (mut has_total, mut has_free, mut has_avail) = (false, false, false);
        for line in crate::cgroup::parse::lines(buf) {
            let Some((k, v)) = meminfo_line(line) else {
                continue;
            };
            match k {
                b"MemTotal" => {
                    h.total = v;
                    has_total = true;
                }
                b"MemFree" => {
                    h.free = v;
                    has_free = true;
                }
                b"MemAvailable" => {
                    h.available = v;
                    has_avail = true;
                }
                b"Buffers" => h.buffers = v,
                b"Cached" => h.cached = v,
                b"Shmem" => h.shmem = v,
                b"SwapTotal" => h.swap_total = v,
                b"SwapFree" => h.swap_free = v,
                b"Mlocked" => h.mlocked = v,
                _ => {}
            }
        }
        if !has_total || !has_free {
            return Err(malformed(path, "no MemTotal or MemFree line"));
        }
        if !has_avail {
            h.available = h.free;
        }
        Ok(h)
    }
}

/// Parse the host's online cpu list.
pub fn parse_online(buf: &[u8], path: &Path) -> Result<Vec<u32>, EmulateError> {
    match parse_cpulist(buf) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(malformed(path, "not a non-empty cpu list")),
    }
}

/// The stanzas of `/proc/cpuinfo` (separated by blank lines), each without
/// its trailing blank line.
pub fn cpuinfo_stanzas(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    memchr::memmem::find_iter(buf, b"\n\n")
        .chain(std::iter::once(buf.len()))
        .scan(0usize, move |start, end| {
            let s = buf.get(*start..end).unwrap_or(&[]);
            *start = end + 2;
            Some(s)
        })
        .map(|s| s.strip_suffix(b"\n").unwrap_or(s))
        .filter(|s| !s.trim_ascii().is_empty())
}

/// The value of `key` in a cpuinfo stanza (`key<tabs>: value`).
pub fn cpuinfo_value<'a>(stanza: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    stanza.split(|&c| c == b'\n').find_map(|line| {
        let colon = memchr::memchr(b':', line)?;
        (line[..colon].trim_ascii() == key).then(|| line[colon + 1..].trim_ascii())
    })
}

/// Fields 1.. of the host's `/proc/<pid>/stat` after the command name: the
/// slice after the last `)`.
pub fn stat_after_comm(buf: &[u8]) -> Option<&[u8]> {
    let close = memchr::memrchr(b')', buf)?;
    Some(buf[close + 1..].trim_ascii_start())
}

/// `starttime` (field 22, clock ticks since boot) of a `/proc/<pid>/stat`.
pub fn stat_starttime(buf: &[u8]) -> Option<u64> {
    // Field 3 (state) is the first after the command; field 22 is 19 later.
    let rest = stat_after_comm(buf)?;
    crate::cgroup::parse::fields(rest)
        .nth(19)
        .and_then(parse_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines() {
        assert_eq!(
            meminfo_line(b"MemTotal:       24683656 kB"),
            Some((&b"MemTotal"[..], 24683656))
        );
        assert_eq!(
            meminfo_line(b"HugePages_Total:       0"),
            Some((&b"HugePages_Total"[..], 0))
        );
        assert_eq!(meminfo_line(b"garbage"), None);
        let err = HostMeminfo::parse(b"Foo: 1 kB\n", Path::new("m")).expect_err("no total");
        assert!(matches!(err, EmulateError::Malformed { .. }));
    }

    #[test]
    fn stanzas() {
        let text = b"processor\t: 0\nx\t: 1\n\nprocessor\t: 1\nx\t: 2\n\n";
        let v: Vec<&[u8]> = cpuinfo_stanzas(text).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(cpuinfo_value(v[1], b"processor"), Some(&b"1"[..]));
        assert_eq!(cpuinfo_value(v[1], b"x"), Some(&b"2"[..]));
    }

    #[test]
    fn starttime() {
        let stat =
            b"123 (a) b) c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000 10";
        assert_eq!(stat_starttime(stat), Some(4242));
        assert_eq!(stat_starttime(b"123 (x) S 1"), None);
    }
}
