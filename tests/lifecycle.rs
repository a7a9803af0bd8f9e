//! Container lifecycle through Docker: every exec is registered, restart
//! and stop/start give a fresh container uptime.

mod common;

use common::*;
use std::time::Duration;

fn exec_uptime(c: &Container) -> f64 {
    let out = c.exec(&["cat", "/proc/uptime"]).ok();
    uptime_secs(&out.stdout).unwrap_or_else(|| panic!("{out}"))
}

#[test]
fn many_execs_each_see_the_limit() {
    let env = require_env!();
    let c = env.run(BUSYBOX).limited().start(&["sleep", "300"]);
    for i in 0..25 {
        let user = if i % 2 == 0 { "0" } else { "1000" };
        let out = c.exec_opts(&["-u", user], &["cat", "/proc/meminfo"]).ok();
        assert_eq!(
            meminfo_kb(&out.stdout, "MemTotal"),
            Some(MEM_LIMIT_KB),
            "exec #{i} as {user}:\n{out}"
        );
    }
    // concurrent execs
    let outs: Vec<Out> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| c.exec(&["cat", "/proc/meminfo"])))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("exec thread"))
            .collect()
    });
    for out in outs {
        assert_eq!(
            meminfo_kb(&out.stdout, "MemTotal"),
            Some(MEM_LIMIT_KB),
            "concurrent exec:\n{out}"
        );
    }
}

#[test]
fn restart_gives_a_fresh_uptime() {
    let env = require_env!();
    let c = env.run(BUSYBOX).limited().start(&["sleep", "300"]);
    std::thread::sleep(Duration::from_secs(4));
    let before = exec_uptime(&c);
    assert!(
        (3.5..60.0).contains(&before),
        "uptime before restart: {before}"
    );
    c.docker(&["restart", "-t", "0", &c.id]).ok();
    let after = exec_uptime(&c);
    assert!(
        after < 3.0 && after < before,
        "uptime after restart {after} (before {before})"
    );
    let out = c.exec(&["cat", "/proc/meminfo"]).ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(MEM_LIMIT_KB),
        "after restart:\n{out}"
    );
}

#[test]
fn stop_then_start_is_served_again() {
    let env = require_env!();
    let c = env.run(BUSYBOX).limited().start(&["sleep", "300"]);
    std::thread::sleep(Duration::from_secs(4));
    let before = exec_uptime(&c);
    assert!(before >= 3.5, "uptime before stop: {before}");
    c.docker(&["stop", "-t", "0", &c.id]).ok();
    c.docker(&["start", &c.id]).ok();
    let after = exec_uptime(&c);
    assert!(
        after < 3.0,
        "uptime after stop/start {after} (before {before})"
    );
    let out = c
        .exec(&[
            "sh",
            "-c",
            "cat /proc/meminfo; cat /sys/devices/system/cpu/online",
        ])
        .ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(MEM_LIMIT_KB),
        "after start:\n{out}"
    );
    assert_eq!(
        out.stdout.lines().last(),
        Some("0"),
        "cpu/online after start:\n{out}"
    );
}
