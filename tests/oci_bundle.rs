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

/// A plain rootfs directory is bound ID-mapped: its files (owned by host
/// root) belong to the container's root, and what the container writes
/// lands on disk unshifted.
#[test]
fn bundle_rootfs_directory_is_id_mapped() {
    let env = require_env!(supervisor);
    let b = Bundle::busybox(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map; stat -c %u /bin/busybox; echo w > /tmp/written",
        ],
        None,
    );
    let cfg = b.dir.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["root"]["readonly"] = false.into();
    std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = b.run(&Engine::Syscont(&env.state_dir)).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 65536,
        "{out}"
    );
    assert_eq!(lines[1], "0", "{out}");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(b.dir.path().join("rootfs/tmp/written")).unwrap();
    assert_eq!(md.uid(), 0, "written file on disk");
}

/// Where the file system cannot ID-map (here: a rootfs inside an overlay,
/// which cannot be ID-mapped), the runtime falls back to a chowned copy,
/// says so in its log, and the container still runs as its own root.
#[test]
fn rootfs_that_cannot_be_id_mapped_falls_back_to_a_chowned_copy() {
    let env = require_env!(supervisor);
    let b = Bundle::busybox(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map; stat -c %u /bin/busybox; echo w > /tmp/written && echo wrote",
        ],
        None,
    );
    // Put the rootfs inside an overlay mount.
    let ovl = tempfile::Builder::new()
        .prefix("syscont-ovl")
        .tempdir_in("/var/tmp")
        .unwrap();
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(ovl.path().join(d)).unwrap();
    }
    let moved = ovl.path().join("lower/rootfs");
    std::fs::rename(b.dir.path().join("rootfs"), &moved).unwrap();
    let p = |d: &str| ovl.path().join(d).display().to_string();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        p("lower"),
        p("upper"),
        p("work")
    );
    run_cmd(
        std::process::Command::new("mount").args([
            "-t",
            "overlay",
            "overlay",
            "-o",
            &opts,
            &p("merged"),
        ]),
        std::time::Duration::from_secs(30),
    )
    .ok();
    let cfg = b.dir.path().join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    v["root"]["path"] = format!("{}/rootfs", p("merged")).into();
    v["root"]["readonly"] = false.into();
    std::fs::write(&cfg, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = b.run(&Engine::Syscont(&env.state_dir));
    let _ = std::process::Command::new("umount")
        .arg(p("merged"))
        .status();
    let out = out.ok();
    assert!(
        out.stderr.contains("chowned copy"),
        "no word of the fallback:\n{out}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[1], "0",
        "copied files owned by the container's root:\n{out}"
    );
    assert_eq!(lines[2], "wrote", "{out}");
}
