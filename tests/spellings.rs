//! The emulation follows the file, not the spelling: every way of naming
//! /proc/meminfo, /proc/uptime and /sys/devices/system/cpu/online, from the
//! container's init, through `docker exec`, and as a non-root user.

mod common;

use common::*;
use std::time::Duration;

/// Check every "case value" line of tests/fixtures/spellings.py.
#[track_caller]
fn check_spellings(out: &Out, as_root: bool) {
    let kv = kv_lines(&out.stdout);
    let mut bad = Vec::new();
    let mut seen = 0;
    for (case, v) in &kv {
        seen += 1;
        let ok = if case.starts_with("fake_") {
            v == "MemTotal=1"
        } else if case.starts_with("uptime_") {
            v.strip_prefix("up=")
                .and_then(|s| s.parse::<f64>().ok())
                .is_some_and(|u| u < 120.0)
        } else if case.starts_with("online_") {
            v == "online=0"
        } else {
            *v == format!("MemTotal={MEM_LIMIT_KB}")
        };
        if !ok {
            bad.push(format!("{case} {v}"));
        }
    }
    let expected = if as_root { 35 } else { 33 };
    assert_eq!(
        seen, expected,
        "spellings.py printed {seen} cases, expected {expected}:\n{out}"
    );
    assert!(
        bad.is_empty(),
        "wrong results for:\n  {}\nfull output:\n{out}",
        bad.join("\n  ")
    );
}

#[test]
fn every_spelling_from_init() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .fixtures()
        .cmd(&["python3", "/fixtures/spellings.py"])
        .ok();
    check_spellings(&out, true);
}

#[test]
fn every_spelling_as_non_root() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .user("1000")
        .fixtures()
        .cmd(&["python3", "/fixtures/spellings.py"])
        .ok();
    check_spellings(&out, false);
}

#[test]
fn every_spelling_through_docker_exec_as_root_and_non_root() {
    let env = require_env!();
    let c = env
        .run(BOOKWORM)
        .limited()
        .fixtures()
        .start(&["sleep", "300"]);
    let out = c.exec(&["python3", "/fixtures/spellings.py"]).ok();
    check_spellings(&out, true);
    let out = c
        .exec_opts(&["-u", "1000"], &["python3", "/fixtures/spellings.py"])
        .ok();
    check_spellings(&out, false);
}

/// The shell spellings with coreutils/busybox `cat`.
const CAT_SPELLINGS: &str = r#"
cat /proc/meminfo | grep MemTotal
(cd /proc && cat meminfo) | grep MemTotal
cat /proc/./meminfo | grep MemTotal
cat //proc//meminfo | grep MemTotal
cat /proc/../proc/meminfo | grep MemTotal
cat /proc/self/../meminfo | grep MemTotal
(cd / && cat proc/meminfo) | grep MemTotal
(cd /proc/self && cat ../meminfo) | grep MemTotal
cat < /proc/meminfo | grep MemTotal
"#;

#[track_caller]
fn check_cat(out: &Out) {
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 9, "nine spellings expected:\n{out}");
    for l in lines {
        assert_eq!(
            meminfo_kb(l, "MemTotal"),
            Some(MEM_LIMIT_KB),
            "line {l:?}:\n{out}"
        );
    }
}

#[test]
fn cat_spellings_busybox_root_and_non_root() {
    let env = require_env!();
    check_cat(&env.run(BUSYBOX).limited().sh(CAT_SPELLINGS).ok());
    check_cat(
        &env.run(BUSYBOX)
            .limited()
            .user("1000")
            .sh(CAT_SPELLINGS)
            .ok(),
    );
}

#[test]
fn cat_spellings_coreutils_through_exec() {
    let env = require_env!();
    let c = env.run(BOOKWORM).limited().start(&["sleep", "300"]);
    check_cat(&c.sh(CAT_SPELLINGS).ok());
    check_cat(
        &c.exec_opts(&["-u", "1000"], &["sh", "-c", CAT_SPELLINGS])
            .ok(),
    );
    // a process started by the exec'd shell, not the exec'd process itself
    let out = c
        .sh("sh -c 'sh -c \"cat /proc/meminfo\"' | grep MemTotal")
        .ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(MEM_LIMIT_KB),
        "{out}"
    );
}

#[test]
fn exec_into_a_running_container_sees_its_start_time() {
    let env = require_env!();
    let c = env.run(BUSYBOX).limited().start(&["sleep", "300"]);
    std::thread::sleep(Duration::from_secs(3));
    let out = c.exec(&["cat", "/proc/uptime"]).ok();
    let up = uptime_secs(&out.stdout).expect("uptime");
    assert!(
        (2.5..60.0).contains(&up),
        "exec'd process should see the container's uptime (>= 3 s):\n{out}"
    );
}

/// A working directory reached through a symlink into /proc is resolved
/// (the cwd is read from the kernel, not from the spelling). A path that
/// goes through a symlink placed *outside* /proc (`cat /tmp/p/meminfo`) is
/// not followed: docs/limitations.md explains the cost trade-off.
#[test]
fn cwd_through_a_symlink_into_proc() {
    let env = require_env!();
    let script = "ln -s /proc /tmp/p; cd /tmp/p && grep MemTotal meminfo";
    let out = env.run(BUSYBOX).limited().sh(script).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert_eq!(
        meminfo_kb(lines[0], "MemTotal"),
        Some(MEM_LIMIT_KB),
        "cwd through a symlink: {:?}\n{out}",
        lines[0]
    );
}
