//! Allocation-free byte-slice parsing shared by the cgroup readers and the
//! emulated-file renderers: numbers, trimmed fields, `key value` lines and
//! kernel cpu lists (`0-3,5`).

/// Parse an unsigned decimal number with optional surrounding ASCII
/// whitespace. `None` on anything else (sign, garbage, overflow).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// Parse a signed decimal number (cgroup v1 writes `-1` for "no quota").
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let s = s.trim_ascii();
    match s.split_first() {
        Some((b'-', rest)) => {
            let v = parse_u64(rest)?;
            i64::try_from(v).ok().map(|v| -v)
        }
        _ => parse_u64(s).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Split `line` at the first run of ASCII whitespace: `("key", "rest")`.
pub fn split_key(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|c| c.is_ascii_whitespace()) {
        Some(i) => (&line[..i], line[i..].trim_ascii_start()),
        None => (line, &[]),
    }
}

/// Iterate over the lines of `buf` without their `\n` (no allocation).
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&c| c == b'\n').filter(|l| !l.is_empty())
}

/// Whitespace-separated fields of a line.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// Parse a kernel cpu list (`"0-3,5,7-8\n"`) into sorted, deduplicated cpu
/// numbers. An empty list is valid (an empty cpuset). `None` when malformed
/// or absurdly large (more than 65536 cpus).
pub fn parse_cpulist(s: &[u8]) -> Option<Vec<u32>> {
    const MAX_CPUS: u32 = 65536;
    let s = s.trim_ascii();
    let mut out = Vec::new();
    if s.is_empty() {
        return Some(out);
    }
    for part in s.split(|&c| c == b',') {
        let (lo, hi) = match part.iter().position(|&c| c == b'-') {
            Some(i) => (parse_u64(&part[..i])?, parse_u64(&part[i + 1..])?),
            None => {
                let v = parse_u64(part)?;
                (v, v)
            }
        };
        if lo > hi || hi >= u64::from(MAX_CPUS) {
            return None;
        }
        // Both bounds are below MAX_CPUS, so the conversions cannot fail.
        let (lo, hi) = (u32::try_from(lo).ok()?, u32::try_from(hi).ok()?);
        out.extend(lo..=hi);
        if out.len() > MAX_CPUS as usize {
            return None;
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// Format a sorted cpu list the way the kernel's `%*pbl` does: `0-3,5`.
pub fn format_cpulist(cpus: &[u32], out: &mut Vec<u8>) {
    use std::io::Write as _;
    let mut i = 0;
    let mut first = true;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end.saturating_add(1) {
            end = cpus[i + 1];
            i += 1;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // Writing into a Vec cannot fail.
        let _ = if start == end {
            write!(out, "{start}")
        } else {
            write!(out, "{start}-{end}")
        };
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b" 42\n"), Some(42));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"4x"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_i64(b"-1\n"), Some(-1));
        assert_eq!(parse_i64(b"100000"), Some(100000));
        assert_eq!(parse_i64(b"--1"), None);
    }

    #[test]
    fn key_split_and_fields() {
        assert_eq!(split_key(b"cache 123"), (&b"cache"[..], &b"123"[..]));
        assert_eq!(split_key(b"alone"), (&b"alone"[..], &b""[..]));
        let f: Vec<&[u8]> = fields(b"  a  b\tc ").collect();
        assert_eq!(f, vec![&b"a"[..], b"b", b"c"]);
    }

    #[test]
    fn cpulists() {
        assert_eq!(parse_cpulist(b"0-3,5\n"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpulist(b"\n"), Some(vec![]));
        assert_eq!(parse_cpulist(b"3-1"), None);
        assert_eq!(parse_cpulist(b"0-99999999"), None);
        assert_eq!(parse_cpulist(b"a"), None);
        let mut out = Vec::new();
        format_cpulist(&[0, 2, 3, 4, 7], &mut out);
        assert_eq!(out, b"0,2-4,7");
        out.clear();
        format_cpulist(&[0], &mut out);
        assert_eq!(out, b"0");
    }
}
