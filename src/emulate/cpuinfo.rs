//! `/proc/cpuinfo`: the host's stanzas of the CPUs the container may use
//! (see [`super::cpu_online`]), renumbered `0..n-1`.
//!
//! Each kept stanza is the host's, byte for byte, except `processor` (the
//! new number) and, as LXCFS does, `siblings` and `cpu cores` (both `n`, as
//! if the container's CPUs were one socket of `n` cores) so that tools that
//! multiply sockets × cores (lscpu) count `n`. Stanzas that are not about a
//! processor (headers or trailers of some architectures) are kept as they are.

use std::io::Write as _;

use super::host::{cpuinfo_stanzas, cpuinfo_value};
use crate::cgroup::parse::parse_u64;

/// Render the cpuinfo of the host CPUs `usable` (sorted host numbers).
/// Should some of them have no stanza (a CPU hot-unplugged since the cgroup
/// was read), other CPUs' stanzas stand in, so that the file always counts
/// `usable.len()` processors when the host has that many.
pub fn render(host_text: &[u8], usable: &[u32], out: &mut Vec<u8>) {
    let n = usable.len();
    let is_usable = |cpu: u32| usable.binary_search(&cpu).is_ok();
    let found = cpuinfo_stanzas(host_text)
        .filter_map(processor_of)
        .filter(|&c| is_usable(c))
        .count();
    let mut spare = n.saturating_sub(found);
    let mut next = 0usize;
    for stanza in cpuinfo_stanzas(host_text) {
        let Some(cpu) = processor_of(stanza) else {
            out.extend_from_slice(stanza);
            out.extend_from_slice(b"\n\n");
            continue;
        };
        if !is_usable(cpu) {
            if spare == 0 {
                continue;
            }
            spare -= 1;
        }
        write_stanza(stanza, next, n, out);
        next += 1;
    }
}

fn processor_of(stanza: &[u8]) -> Option<u32> {
    cpuinfo_value(stanza, b"processor")
        .and_then(parse_u64)
        .and_then(|v| u32::try_from(v).ok())
}

/// One stanza with `processor` set to `index` and `siblings`/`cpu cores`
/// to `n`.
fn write_stanza(stanza: &[u8], index: usize, n: usize, out: &mut Vec<u8>) {
    for line in stanza.split(|&c| c == b'\n') {
        let key = memchr::memchr(b':', line).map(|c| (c, line[..c].trim_ascii()));
        match key {
            Some((colon, b"processor")) => {
                out.extend_from_slice(&line[..=colon]);
                let _ = write!(out, " {index}");
            }
            Some((colon, b"siblings" | b"cpu cores")) => {
                out.extend_from_slice(&line[..=colon]);
                let _ = write!(out, " {n}");
            }
            _ => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(n: u32) -> String {
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&format!(
                "processor\t: {i}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\
                 physical id\t: 0\nsiblings\t: {n}\ncore id\t\t: {i}\ncpu cores\t: {n}\n\
                 apicid\t\t: {i}\nflags\t\t: fpu vme\npower management:\n\n"
            ));
        }
        s
    }

    #[test]
    fn narrowed_and_renumbered() {
        let mut out = Vec::new();
        render(host(4).as_bytes(), &[1, 2], &mut out);
        let s = String::from_utf8(out).expect("utf8");
        assert_eq!(s.matches("processor\t:").count(), 2);
        assert!(
            s.starts_with("processor\t: 0\nvendor_id\t: AuthenticAMD\n"),
            "{s}"
        );
        assert!(s.contains("processor\t: 1\n"));
        assert!(!s.contains("processor\t: 2\n"));
        // The host's stanza content is kept (core id of host cpu 1).
        assert!(s.contains("core id\t\t: 1\n"));
        assert!(s.contains("core id\t\t: 2\n"));
        assert_eq!(s.matches("siblings\t: 2\n").count(), 2);
        assert_eq!(s.matches("cpu cores\t: 2\n").count(), 2);
        assert!(s.ends_with("power management:\n\n"));
    }

    #[test]
    fn missing_stanzas_are_stood_in_for() {
        let mut out = Vec::new();
        render(host(2).as_bytes(), &[1, 5], &mut out);
        let s = String::from_utf8(out).expect("utf8");
        assert_eq!(s.matches("processor\t:").count(), 2);
        assert!(s.contains("processor\t: 0\n") && s.contains("processor\t: 1\n"));
    }

    #[test]
    fn all_cpus_is_host() {
        let h = host(2);
        let mut out = Vec::new();
        render(h.as_bytes(), &[0, 1], &mut out);
        assert_eq!(out, h.as_bytes());
    }
}
