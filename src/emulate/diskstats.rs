//! `/proc/diskstats`: the host's devices, with the container's own block
//! I/O in place of the device counters.
//!
//! For each host line the container's blkio figures of that device give
//! reads and writes completed, sectors read and written (bytes / 512) and,
//! where v2 reports them, discards; every other counter (merges, times, in
//! flight, flushes) is 0, since no cgroup accounts them. Devices the
//! container never touched read all zeros, and so do partitions (cgroups
//! account I/O to the whole disk's `major:minor`). A container in the host's root
//! cgroup sees the host's file. Lines are printed in the kernel's layout
//! (`%4d %7d %s` then the counters) with as many counters as the host's
//! line has (14, 18 or 20 fields depending on the kernel).

use std::io::Write as _;

use crate::cgroup::parse::{fields, parse_u64};
use crate::cgroup::BlkioDevice;

pub fn render(host_text: &[u8], blkio: &[BlkioDevice], host_view: bool, out: &mut Vec<u8>) {
    if host_view {
        out.extend_from_slice(host_text);
        return;
    }
    for line in host_text.split_inclusive(|&c| c == b'\n') {
        let mut f = fields(line);
        let (Some(major), Some(minor), Some(name)) = (
            f.next().and_then(parse_u64),
            f.next().and_then(parse_u64),
            f.next(),
        ) else {
            // Not a device line: keep it as it is.
            out.extend_from_slice(line);
            continue;
        };
        let counters = f.count();
        let dev = blkio
            .iter()
            .find(|d| u64::from(d.major) == major && u64::from(d.minor) == minor)
            .copied()
            .unwrap_or_default();
        let _ = write!(out, "{major:>4} {minor:>7} ");
        out.extend_from_slice(name);
        for i in 0..counters {
            let v = match i {
                0 => dev.reads,
                2 => dev.read_bytes / 512,
                4 => dev.writes,
                6 => dev.write_bytes / 512,
                11 => dev.discards,
                13 => dev.discard_bytes / 512,
                _ => 0,
            };
            let _ = write!(out, " {v}");
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 29071 6239 2577082 11100 7407 10836 1793784 6514 0 6412 19112 3856 66 268048 905 1125 590
";

    #[test]
    fn container_counters() {
        let dev = BlkioDevice {
            major: 254,
            minor: 0,
            read_bytes: 1 << 20,
            write_bytes: 1 << 19,
            reads: 10,
            writes: 5,
            discard_bytes: 0,
            discards: 0,
        };
        let mut out = Vec::new();
        render(HOST.as_bytes(), &[dev], false, &mut out);
        let s = String::from_utf8(out).expect("utf8");
        assert_eq!(
            s,
            "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 254       0 vda 10 0 2048 0 5 0 1024 0 0 0 0 0 0 0 0 0 0
"
        );
        for (a, b) in s.lines().zip(HOST.lines()) {
            assert_eq!(a.split_whitespace().count(), b.split_whitespace().count());
            assert_eq!(a[..17], b[..17]);
        }
        let mut out = Vec::new();
        render(HOST.as_bytes(), &[], true, &mut out);
        assert_eq!(out, HOST.as_bytes());
    }
}
