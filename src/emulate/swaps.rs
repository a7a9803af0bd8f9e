//! `/proc/swaps`, consistent with meminfo's `SwapTotal`/`SwapFree`.
//!
//! Unlimited container: the host's file. Container with no swap (the usual
//! case: a memory limit without swap accounting): the header only. A
//! container with swap: one line for a pseudo device `none` of type
//! `virtual` (as LXCFS) holding its swap size and use, laid out as the
//! kernel's `swap_show`.

use std::io::Write as _;

use super::meminfo::MemFigures;

/// The kernel's header line.
pub const HEADER: &[u8] = b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

pub fn render(host_text: &[u8], mem: &MemFigures, out: &mut Vec<u8>) {
    if !mem.limited {
        out.extend_from_slice(host_text);
        return;
    }
    out.extend_from_slice(HEADER);
    if mem.swap_total == 0 {
        return;
    }
    let size = mem.swap_total;
    let used = mem.swap_total.saturating_sub(mem.swap_free);
    // Kernel: "%s%*s%s\t%lu\t%s%lu\t%s%d\n" (name padded to 40 columns).
    let name = "none";
    let tab = |v: u64| if v < 10_000_000 { "\t" } else { "" };
    let _ = writeln!(
        out,
        "{name}{:pad$}virtual\t{size}\t{}{used}\t{}0",
        "",
        tab(size),
        tab(used),
        pad = 40 - name.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        let host = b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/vdb                                partition\t2097148\t\t0\t\t-2\n";
        let mut m = MemFigures {
            limited: false,
            ..MemFigures::default()
        };
        let mut out = Vec::new();
        render(host, &m, &mut out);
        assert_eq!(out, host);
        m.limited = true;
        out.clear();
        render(host, &m, &mut out);
        assert_eq!(out, HEADER);
        m.swap_total = 65536;
        m.swap_free = 55296;
        out.clear();
        render(host, &m, &mut out);
        let s = String::from_utf8(out).expect("utf8");
        let line = s.lines().nth(1).expect("line");
        assert_eq!(
            line,
            "none                                    virtual\t65536\t\t10240\t\t0"
        );
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f, vec!["none", "virtual", "65536", "10240", "0"]);
    }
}
