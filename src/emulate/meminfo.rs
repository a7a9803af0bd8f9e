//! `/proc/meminfo` from the container's memory cgroup.
//!
//! Semantics (all in kB, as the kernel prints them):
//! - A container whose effective limit is unset or not below the host's
//!   `MemTotal` sees the host's file unchanged (its figures are the host's).
//! - Otherwise `MemTotal` is the limit. `MemFree` = total − usage, where
//!   usage is the cgroup's charge *including* page cache: that is what the
//!   kernel will reclaim from or OOM on, so it is what the host calls "used".
//!   (LXCFS does the same.) `MemAvailable` = free + the reclaimable file
//!   LRU pages (active_file + inactive_file, plus reclaimable slab where v2
//!   reports it), capped at total. `Cached` is the page cache (shmem
//!   included, as the kernel's), capped at usage; `Buffers` and
//!   `SwapCached` are 0 (not accounted per cgroup). LRU lines, `Unevictable`,
//!   `Dirty`, `Writeback`, `AnonPages`, `Mapped`, `Shmem` come from
//!   `memory.stat`; `Mlocked` is the host's capped at `Unevictable`.
//!   Kernel memory lines (`Slab`, `SReclaimable`, `SUnreclaim`,
//!   `KReclaimable`, `KernelStack`, `PageTables`) come from v2's
//!   `memory.stat`; v1 does not break them down per cgroup, so they read 0
//!   (that memory is still inside the usage). `CommitLimit` is derived with
//!   the default overcommit ratio: total/2 + SwapTotal.
//! - Swap: with swap accounting, `SwapTotal` = the swap limit (the host's
//!   swap when unlimited), never above the host's; `SwapFree` = total −
//!   used. Without swap accounting the container is given no swap (0/0):
//!   with a memory limit and no memsw limit we cannot tell it anything true.
//! - Every other host line (`Vmalloc*`, `HugePages_*`, `DirectMap*`, …) is
//!   kept as the host prints it. Lines are printed exactly as the kernel's
//!   `show_val_kb`: the label padded to 16 columns, the value right-aligned
//!   in 8, then ` kB`.

use std::io::Write as _;
use std::path::Path;

use super::host::{meminfo_line, HostMeminfo};
use super::EmulateError;
use crate::cgroup::MemoryStats;

/// The container's memory figures, in kB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemFigures {
    /// False: the host's figures apply unchanged.
    pub limited: bool,
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub shmem: u64,
    pub swap_total: u64,
    pub swap_free: u64,
    pub active_anon: u64,
    pub inactive_anon: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub unevictable: u64,
    pub mlocked: u64,
    pub dirty: u64,
    pub writeback: u64,
    pub anon_pages: u64,
    pub mapped: u64,
    pub slab_reclaimable: u64,
    pub slab_unreclaimable: u64,
    pub kernel_stack: u64,
    pub pagetables: u64,
}

const fn kb(bytes: u64) -> u64 {
    bytes / 1024
}

/// Compute the container's figures from the host's and the cgroup's.
pub fn figures(host: &HostMeminfo, m: &MemoryStats) -> MemFigures {
    let Some(limit_kb) = m.limit.map(kb).filter(|&l| l < host.total) else {
        return MemFigures {
            limited: false,
            total: host.total,
            free: host.free,
            available: host.available,
            buffers: host.buffers,
            cached: host.cached,
            shmem: host.shmem,
            swap_total: host.swap_total,
            swap_free: host.swap_free,
            mlocked: host.mlocked,
            ..MemFigures::default()
        };
    };
    let total = limit_kb;
    let used = kb(m.usage).min(total);
    let free = total - used;
    let reclaimable = kb(m.active_file)
        .saturating_add(kb(m.inactive_file))
        .saturating_add(m.slab_reclaimable.map_or(0, kb));
    let (swap_total, swap_free) = match m.swap {
        None => (0, 0),
        Some(s) => {
            let t = s.limit.map_or(host.swap_total, kb).min(host.swap_total);
            (t, t - kb(s.usage).min(t))
        }
    };
    let cap = |v: u64| kb(v).min(total);
    MemFigures {
        limited: true,
        total,
        free,
        available: free.saturating_add(reclaimable).min(total),
        buffers: 0,
        cached: kb(m.cache).min(used),
        shmem: cap(m.shmem),
        swap_total,
        swap_free,
        active_anon: cap(m.active_anon),
        inactive_anon: cap(m.inactive_anon),
        active_file: cap(m.active_file),
        inactive_file: cap(m.inactive_file),
        unevictable: cap(m.unevictable),
        mlocked: host.mlocked.min(cap(m.unevictable)),
        dirty: cap(m.dirty),
        writeback: cap(m.writeback),
        anon_pages: cap(m.rss),
        mapped: cap(m.mapped_file),
        slab_reclaimable: m.slab_reclaimable.map_or(0, cap),
        slab_unreclaimable: m.slab_unreclaimable.map_or(0, cap),
        kernel_stack: m.kernel_stack.map_or(0, cap),
        pagetables: m.pagetables.map_or(0, cap),
    }
}

impl MemFigures {
    /// The container's value of a meminfo key, `None` to keep the host's.
    fn value(&self, key: &[u8]) -> Option<u64> {
        Some(match key {
            b"MemTotal" => self.total,
            b"MemFree" => self.free,
            b"MemAvailable" => self.available,
            b"Buffers" => self.buffers,
            b"Cached" => self.cached,
            b"SwapCached" => 0,
            b"Active" => self.active_anon + self.active_file,
            b"Inactive" => self.inactive_anon + self.inactive_file,
            b"Active(anon)" => self.active_anon,
            b"Inactive(anon)" => self.inactive_anon,
            b"Active(file)" => self.active_file,
            b"Inactive(file)" => self.inactive_file,
            b"Unevictable" => self.unevictable,
            b"Mlocked" => self.mlocked,
            b"SwapTotal" => self.swap_total,
            b"SwapFree" => self.swap_free,
            b"Dirty" => self.dirty,
            b"Writeback" => self.writeback,
            b"AnonPages" => self.anon_pages,
            b"Mapped" => self.mapped,
            b"Shmem" => self.shmem,
            b"KReclaimable" | b"SReclaimable" => self.slab_reclaimable,
            b"Slab" => self.slab_reclaimable + self.slab_unreclaimable,
            b"SUnreclaim" => self.slab_unreclaimable,
            b"KernelStack" => self.kernel_stack,
            b"PageTables" => self.pagetables,
            b"CommitLimit" => self.total / 2 + self.swap_total,
            _ => return None,
        })
    }
}

/// Render the container's meminfo from the host's text `host_text`.
pub fn render(
    host_text: &[u8],
    host_path: &Path,
    m: &MemoryStats,
    out: &mut Vec<u8>,
) -> Result<MemFigures, EmulateError> {
    let host = HostMeminfo::parse(host_text, host_path)?;
    let f = figures(&host, m);
    if !f.limited {
        out.extend_from_slice(host_text);
        return Ok(f);
    }
    for line in host_text.split_inclusive(|&c| c == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let value = if body.ends_with(b" kB") {
            meminfo_line(body).and_then(|(k, _)| f.value(k).map(|v| (k, v)))
        } else {
            None
        };
        match value {
            Some((k, v)) => {
                let start = out.len();
                out.extend_from_slice(k);
                out.push(b':');
                let pad = 16usize.saturating_sub(out.len() - start);
                out.resize(out.len() + pad, b' ');
                // Writing into a Vec cannot fail.
                let _ = writeln!(out, "{v:>8} kB");
            }
            None => out.extend_from_slice(line),
        }
    }
    Ok(f)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fixtures::MIB;
    use crate::cgroup::SwapStats;

    pub(crate) const HOST: &str = "\
MemTotal:       16384000 kB
MemFree:        12000000 kB
MemAvailable:   14000000 kB
Buffers:           14156 kB
Cached:          1016532 kB
SwapCached:            0 kB
Active:           377656 kB
Inactive:         649104 kB
Active(anon):       1520 kB
Inactive(anon):     3604 kB
Active(file):     376136 kB
Inactive(file):   645500 kB
Unevictable:       10288 kB
Mlocked:            8768 kB
SwapTotal:       2097148 kB
SwapFree:        2097148 kB
Dirty:               136 kB
Writeback:             0 kB
AnonPages:          6568 kB
Mapped:            10280 kB
Shmem:              8952 kB
KReclaimable:      73552 kB
Slab:              95544 kB
SReclaimable:      73552 kB
SUnreclaim:        21992 kB
KernelStack:        1304 kB
PageTables:         1064 kB
CommitLimit:    12341828 kB
Committed_AS:      48396 kB
VmallocTotal:   34359738367 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
DirectMap1G:    25165824 kB
";

    pub(crate) fn limited_stats() -> MemoryStats {
        MemoryStats {
            limit: Some(256 * MIB),
            usage: 100 * MIB,
            cache: 60 * MIB,
            rss: 30 * MIB,
            shmem: 4 * MIB,
            mapped_file: 8 * MIB,
            dirty: MIB,
            active_anon: 20 * MIB,
            inactive_anon: 14 * MIB,
            active_file: 40 * MIB,
            inactive_file: 16 * MIB,
            ..MemoryStats::default()
        }
    }

    fn get(text: &[u8], key: &str) -> u64 {
        let s = std::str::from_utf8(text).expect("utf8");
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key} in {s}"));
        meminfo_line(line.as_bytes()).expect("line").1
    }

    #[test]
    fn limited_256m() {
        let mut out = Vec::new();
        let f = render(
            HOST.as_bytes(),
            Path::new("meminfo"),
            &limited_stats(),
            &mut out,
        )
        .expect("render");
        let s = std::str::from_utf8(&out).expect("utf8");
        assert!(
            s.starts_with("MemTotal:         262144 kB\nMemFree:          159744 kB\n"),
            "{s}"
        );
        assert!(s.contains("\nMemAvailable:     217088 kB\n"), "{s}");
        assert!(s.contains("\nInactive(anon):    14336 kB\n"), "{s}");
        assert_eq!(get(&out, "Cached"), 60 * 1024);
        assert_eq!(get(&out, "Buffers"), 0);
        assert_eq!(get(&out, "Active"), 60 * 1024);
        assert_eq!(get(&out, "Shmem"), 4 * 1024);
        assert_eq!(get(&out, "SwapTotal"), 0);
        assert_eq!(get(&out, "SwapFree"), 0);
        assert_eq!(get(&out, "Mlocked"), 0);
        assert_eq!(get(&out, "Slab"), 0);
        assert_eq!(get(&out, "CommitLimit"), 131072);
        // Host-only lines are kept byte for byte, in order.
        assert!(s.contains("\nVmallocTotal:   34359738367 kB\nHugePages_Total:       0\n"));
        assert!(s.ends_with("DirectMap1G:    25165824 kB\n"));
        assert_eq!(s.lines().count(), HOST.lines().count());
        assert!(f.free <= f.total && f.available <= f.total && f.available >= f.free);
        // Every rewritten line keeps the kernel's layout.
        for (a, b) in s.lines().zip(HOST.lines()) {
            assert!(a.contains(|c: char| c.is_ascii_digit()));
            if b.len() == 28 && b.ends_with(" kB") {
                assert_eq!(a.len(), 28, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn unlimited_is_host() {
        let mut m = limited_stats();
        m.limit = None;
        let mut out = Vec::new();
        let f = render(HOST.as_bytes(), Path::new("meminfo"), &m, &mut out).expect("render");
        assert_eq!(out, HOST.as_bytes());
        assert!(!f.limited);
        // A limit above the host's memory is no limit either.
        m.limit = Some(64 << 30);
        out.clear();
        render(HOST.as_bytes(), Path::new("meminfo"), &m, &mut out).expect("render");
        assert_eq!(out, HOST.as_bytes());
    }

    #[test]
    fn swap_and_overcommitted_usage() {
        let mut m = limited_stats();
        m.swap = Some(SwapStats {
            limit: Some(64 * MIB),
            usage: 10 * MIB,
        });
        let mut out = Vec::new();
        render(HOST.as_bytes(), Path::new("meminfo"), &m, &mut out).expect("render");
        assert_eq!(get(&out, "SwapTotal"), 65536);
        assert_eq!(get(&out, "SwapFree"), 65536 - 10240);
        m.swap = Some(SwapStats {
            limit: None,
            usage: 0,
        });
        out.clear();
        render(HOST.as_bytes(), Path::new("meminfo"), &m, &mut out).expect("render");
        assert_eq!(get(&out, "SwapTotal"), 2097148);
        // Usage above the limit (kernel memory, races): free 0, never negative.
        m.usage = 300 * MIB;
        out.clear();
        let f = render(HOST.as_bytes(), Path::new("meminfo"), &m, &mut out).expect("render");
        assert_eq!(f.free, 0);
        assert!(f.available <= f.total);
    }

    #[test]
    fn malformed_host() {
        let err = render(
            b"nonsense\n",
            Path::new("meminfo"),
            &limited_stats(),
            &mut Vec::new(),
        )
        .expect_err("malformed");
        assert!(err.to_string().contains("meminfo"), "{err}");
    }
}
