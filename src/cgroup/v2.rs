//! cgroup v2: one unified directory; effective limits walk up the parents.

use std::path::Path;
use std::sync::OnceLock;

use super::dir::{collect_tasks, CgDir};
use super::parse::{fields, lines, parse_cpulist, parse_u64, split_key};
use super::v1::split_ratio;
use super::{
    device_entry, for_each_kv, limit_from_bytes, parse_devno, BlkioDevice, CgroupError, CpuDetail,
    CpuQuota, CpuStats, MemoryStats, Result, SwapStats,
};

pub(crate) struct V2 {
    pub(crate) dir: CgDir,
    /// The ancestors below the mount root, nearest first, opened (and their
    /// limit files kept) on the first effective-limit read.
    pub(crate) ancestors: OnceLock<Vec<CgDir>>,
}

/// Parse a v2 limit file (`max` or a number of bytes).
fn parse_max(buf: &[u8]) -> Option<Option<u64>> {
    let t = buf.trim_ascii();
    if t == b"max" {
        Some(None)
    } else {
        parse_u64(t).map(limit_from_bytes)
    }
}

fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl V2 {
    pub(crate) fn describe(&self) -> String {
        super::locate::describe_dirs(&[("unified", Some(&self.dir))])
    }

    pub(crate) fn is_root(&self) -> bool {
        self.dir.is_root()
    }

    /// Effective limit from `name` (`memory.max`, `memory.swap.max`): the
    /// minimum over this cgroup and its ancestors below the mount root (the
    /// root cgroup has no such file). `Ok(None)` when the file is absent in
    /// the cgroup itself (controller not enabled): `exists` tells which.
    fn effective_limit(&self, name: &str, buf: &mut Vec<u8>) -> Result<(bool, Option<u64>)> {
        if !self.dir.read_opt(name, buf)? {
            return Ok((false, None));
        }
        let mut limit =
            parse_max(buf).ok_or_else(|| self.dir.malformed(name, "not max or a number"))?;
        for dir in self.ancestors() {
            if dir.read_opt(name, buf)? {
                let l = parse_max(buf).ok_or_else(|| dir.malformed(name, "not max or a number"))?;
                limit = min_limit(limit, l);
            }
        }
        Ok((true, limit))
    }

    fn ancestors(&self) -> &[CgDir] {
        self.ancestors.get_or_init(|| {
            let mut v = Vec::new();
            let mut cur: &Path = &self.dir.path;
            while let Some(parent) = cur.parent() {
                if !parent.starts_with(&self.dir.mount) || parent == self.dir.mount {
                    break;
                }
                // A parent that cannot be opened has no limit to add.
                if let Ok(d) = CgDir::open(parent.to_owned(), self.dir.mount.clone()) {
                    v.push(d);
                }
                cur = parent;
            }
            v
        })
    }

    pub(crate) fn memory(&self, buf: &mut Vec<u8>) -> Result<MemoryStats> {
        let d = &self.dir;
        let mut m = MemoryStats::default();
        if !d.read_opt("memory.stat", buf)? {
            if !self.is_root() && !d.read_opt("memory.current", buf)? {
                // The memory controller is not enabled for this cgroup: it
                // has no memory limit and no memory figures of its own.
                tracing::debug!(cgroup = %d.path.display(), "memory controller not enabled");
                return Ok(m);
            }
            return Err(CgroupError::Io {
                path: d.file_path("memory.stat"),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let mut bad = false;
        let (mut sr, mut su, mut ks, mut pt) = (None, None, None, None);
        for_each_kv(buf, |k, v| {
            let Some(v) = parse_u64(v) else {
                bad = true;
                return;
            };
            match k {
                b"anon" => m.rss = v,
                b"file" => m.cache = v,
                b"shmem" => m.shmem = v,
                b"file_mapped" => m.mapped_file = v,
                b"file_dirty" => m.dirty = v,
                b"file_writeback" => m.writeback = v,
                b"active_anon" => m.active_anon = v,
                b"inactive_anon" => m.inactive_anon = v,
                b"active_file" => m.active_file = v,
                b"inactive_file" => m.inactive_file = v,
                b"unevictable" => m.unevictable = v,
                b"slab_reclaimable" => sr = Some(v),
                b"slab_unreclaimable" => su = Some(v),
                b"kernel_stack" => ks = Some(v),
                b"pagetables" => pt = Some(v),
                _ => {}
            }
        });
        if bad {
            return Err(d.malformed("memory.stat", "a value is not a number"));
        }
        m.slab_reclaimable = sr;
        m.slab_unreclaimable = su;
        m.kernel_stack = ks;
        m.pagetables = pt;
        m.usage = if d.read_opt("memory.current", buf)? {
            parse_u64(buf).ok_or_else(|| d.malformed("memory.current", "not a number"))?
        } else if self.is_root() {
            // The root cgroup has no memory.current: count what it holds.
            m.rss.saturating_add(m.cache)
        } else {
            return Err(CgroupError::Io {
                path: d.file_path("memory.current"),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        };
        m.limit = self.effective_limit("memory.max", buf)?.1;
        let (has_swap, swap_limit) = self.effective_limit("memory.swap.max", buf)?;
        if has_swap {
            let usage = if d.read_opt("memory.swap.current", buf)? {
                parse_u64(buf).ok_or_else(|| d.malformed("memory.swap.current", "not a number"))?
            } else {
                0
            };
            m.swap = Some(SwapStats {
                limit: swap_limit,
                usage,
            });
        }
        Ok(m)
    }

    pub(crate) fn cpu(&self, buf: &mut Vec<u8>, detail: CpuDetail) -> Result<CpuStats> {
        let d = &self.dir;
        let mut out = CpuStats::default();
        if d.read_opt("cpuset.cpus.effective", buf)? {
            out.cpuset = Some(
                parse_cpulist(buf)
                    .ok_or_else(|| d.malformed("cpuset.cpus.effective", "not a cpu list"))?,
            );
        }
        if d.read_opt("cpu.max", buf)? {
            let mut f = fields(buf);
            let (Some(q), Some(p)) = (f.next(), f.next()) else {
                return Err(d.malformed("cpu.max", "expected \"max|QUOTA PERIOD\""));
            };
            let period_us =
                parse_u64(p).ok_or_else(|| d.malformed("cpu.max", "period is not a number"))?;
            if q != b"max" {
                let quota_us =
                    parse_u64(q).ok_or_else(|| d.malformed("cpu.max", "quota is not a number"))?;
                if quota_us > 0 && period_us > 0 {
                    out.quota = Some(CpuQuota {
                        quota_us,
                        period_us,
                    });
                }
            }
        }
        if detail == CpuDetail::Limits {
            return Ok(out);
        }
        d.read("cpu.stat", buf)?;
        let (mut usage, mut user, mut system) = (None, None, None);
        for_each_kv(buf, |k, v| match k {
            b"usage_usec" => usage = parse_u64(v),
            b"user_usec" => user = parse_u64(v),
            b"system_usec" => system = parse_u64(v),
            _ => {}
        });
        let Some(usage) = usage else {
            return Err(d.malformed("cpu.stat", "no usage_usec"));
        };
        out.usage_ns = usage.saturating_mul(1000);
        // user + system may differ slightly from usage (sampled separately):
        // keep usage and split it by their ratio.
        out.user_ns = split_ratio(out.usage_ns, user.unwrap_or(0), system.unwrap_or(0));
        out.system_ns = out.usage_ns - out.user_ns;
        Ok(out)
    }

    pub(crate) fn blkio(&self, buf: &mut Vec<u8>) -> Result<Vec<BlkioDevice>> {
        let d = &self.dir;
        let mut devs = Vec::new();
        if !d.read_opt("io.stat", buf)? {
            return Ok(devs);
        }
        for line in lines(buf) {
            let (devno, rest) = split_key(line);
            let (major, minor) =
                parse_devno(devno).ok_or_else(|| d.malformed("io.stat", "bad MAJ:MIN"))?;
            let dev = device_entry(&mut devs, major, minor);
            for kv in fields(rest) {
                let Some(eq) = kv.iter().position(|&c| c == b'=') else {
                    return Err(d.malformed("io.stat", "expected key=value"));
                };
                let v = parse_u64(&kv[eq + 1..])
                    .ok_or_else(|| d.malformed("io.stat", "value is not a number"))?;
                match &kv[..eq] {
                    b"rbytes" => dev.read_bytes = v,
                    b"wbytes" => dev.write_bytes = v,
                    b"rios" => dev.reads = v,
                    b"wios" => dev.writes = v,
                    b"dbytes" => dev.discard_bytes = v,
                    b"dios" => dev.discards = v,
                    _ => {}
                }
            }
        }
        Ok(devs)
    }

    pub(crate) fn tasks(&self, buf: &mut Vec<u8>, out: &mut Vec<u32>) -> Result<()> {
        collect_tasks(&self.dir, "cgroup.threads", buf, out)
    }
}
