//! `syscont-runc` on a plain OCI bundle (no Docker), compared with runc.

mod common;

use common::*;

#[test]
fn plain_runc_bundle_sees_the_host() {
    if !require_root() {
        return;
    }
    let b = Bundle::busybox(&["cat", "/proc/meminfo"], Some(MEM_LIMIT_BYTES));
    let out = b.run(&Engine::Runc).ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(host_meminfo_kb("MemTotal")),
        "{out}"
    );
    assert!(b.listed().is_empty(), "runc run left {:?}", b.listed());
}

#[test]
fn syscont_runc_bundle_sees_its_memory_limit() {
    let env = require_env!(supervisor);
    let b = Bundle::busybox(
        &["sh", "-c", "cat /proc/meminfo; free; cat /proc/uptime"],
        Some(MEM_LIMIT_BYTES),
    );
    let out = b.run(&Engine::Syscont(&env.state_dir)).ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(MEM_LIMIT_KB),
        "{out}"
    );
    let free = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_default();
    assert_eq!(
        free.split_whitespace().nth(1),
        Some(MEM_LIMIT_KB.to_string().as_str()),
        "busybox free:\n{out}"
    );
    let up = uptime_secs(out.stdout.lines().last().unwrap_or_default()).expect("uptime");
    assert!(up < 30.0, "bundle uptime {up}:\n{out}");
    assert!(
        b.listed().is_empty(),
        "syscont-runc run left {:?}",
        b.listed()
    );
}

#[test]
fn syscont_runc_bundle_without_limit_sees_the_host() {
    let env = require_env!(supervisor);
    let b = Bundle::busybox(&["cat", "/proc/meminfo"], None);
    let out = b.run(&Engine::Syscont(&env.state_dir)).ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(host_meminfo_kb("MemTotal")),
        "{out}"
    );
}

#[test]
fn create_without_supervisor_fails_with_one_clear_line_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let bogus = tempfile::Builder::new()
        .prefix("syscont-no-supervisor")
        .tempdir()
        .expect("tempdir");
    let b = Bundle::busybox(&["true"], Some(MEM_LIMIT_BYTES));
    let out = b.create(&Engine::Syscont(bogus.path()));
    assert_ne!(
        out.status, 0,
        "create must fail without a supervisor:\n{out}"
    );
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one line on stderr:\n{out}"
    );
    assert!(
        lines[0].contains("syscont-supervisor"),
        "the line should say to start syscont-supervisor:\n{out}"
    );
    assert!(out.stdout.trim().is_empty(), "nothing on stdout:\n{out}");
    assert!(
        b.listed().is_empty(),
        "a failed create left {:?} in runc list",
        b.listed()
    );
    for ctl in ["memory", "cpu", "pids"] {
        let p = std::path::Path::new("/sys/fs/cgroup").join(ctl).join(&b.id);
        assert!(
            !p.exists(),
            "a failed create left the cgroup {}",
            p.display()
        );
    }
}
