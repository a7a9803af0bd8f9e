//! A reader that keeps the fd open and rewinds (procps top, vmstat, free -s)
//! sees fresh values on every refresh.

mod common;

use common::*;

fn pair(kv: &std::collections::BTreeMap<String, String>, k: &str) -> (f64, f64) {
    let v = kv.get(k).unwrap_or_else(|| panic!("no {k} in {kv:?}"));
    let mut it = v
        .split_whitespace()
        .map(|x| x.parse::<f64>().expect("number"));
    (it.next().expect("first"), it.next().expect("second"))
}

#[test]
fn rewinding_readers_see_fresh_values() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .fixtures()
        .cmd(&["python3", "/fixtures/fresh.py"])
        .ok();
    let kv = kv_lines(&out.stdout);
    let (a, b) = pair(&kv, "uptime_rewind");
    assert!(a < 30.0, "first uptime {a} is not the container's:\n{out}");
    assert!(
        b - a >= 1.0,
        "uptime did not advance after seek(0) and 1.2 s ({a} -> {b}):\n{out}"
    );
    let (a, b) = pair(&kv, "memfree_rewind");
    assert!(
        a <= MEM_LIMIT_KB as f64,
        "MemFree {a} kB beyond the 256 MiB limit:\n{out}"
    );
    assert!(
        a - b >= 64.0 * 1024.0,
        "MemFree should drop by the 96 MiB just touched ({a} -> {b} kB):\n{out}"
    );
    let (a, b) = pair(&kv, "stat_rewind");
    assert!(
        b - a >= 20.0,
        "/proc/stat cpu ticks should grow after 1 s of busy loop ({a} -> {b}):\n{out}"
    );
}

#[test]
fn top_free_and_vmstat_refresh() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .sh("free -s 1 -c 2; echo =====; vmstat 1 2; echo =====; top -b -n 2 -d 1 | grep -E '^(top|MiB Mem)'")
        .ok();
    let parts: Vec<&str> = out.stdout.split("=====\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    let totals: Vec<&str> = parts[0]
        .lines()
        .filter(|l| l.starts_with("Mem:"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        totals,
        [MEM_LIMIT_KB.to_string(), MEM_LIMIT_KB.to_string()],
        "free -s 1 -c 2:\n{out}"
    );
    // vmstat: header, header, two samples; the free column within the limit
    let rows: Vec<Vec<u64>> = parts[1]
        .lines()
        .skip(2)
        .map(|l| {
            l.split_whitespace()
                .map(|x| x.parse().expect("vmstat number"))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 2, "vmstat 1 2:\n{out}");
    for r in &rows {
        assert!(
            r[3] <= MEM_LIMIT_KB,
            "vmstat free {} beyond the limit:\n{out}",
            r[3]
        );
    }
    let mem: Vec<&str> = parts[2]
        .lines()
        .filter(|l| l.starts_with("MiB Mem"))
        .collect();
    assert_eq!(mem.len(), 2, "top frames:\n{out}");
    for l in mem {
        assert!(
            l.contains(" 256.0 total"),
            "top refresh lost the limit: {l:?}\n{out}"
        );
    }
}
