//! The supervisor's registry as an operator sees it (`--stats --json`):
//! every process of a container is registered, a listener is forgotten as
//! soon as the kernel reports its processes gone (also while the worker is
//! blocked in a receive), the container is retired when its last process
//! is gone, and SYNC_WAKE_UP is on where the kernel has it.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The `containers` entry of container ID, if registered.
fn entry(env: &Env, id: &str) -> Option<serde_json::Value> {
    supervisor_stats(env)["containers"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["id"] == id).cloned())
}

/// Poll until F holds for the stats, or fail with WHAT after 15 s.
fn eventually(env: &Env, what: &str, f: impl Fn(&Env) -> bool) {
    let start = Instant::now();
    while !f(env) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{what}:\n{:#}",
            supervisor_stats(env)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn processes_are_registered_forgotten_and_retired() {
    let env = require_env!(supervisor);
    let c = env.run(BUSYBOX).limited().start(&["sleep", "300"]);
    let id = c.id.clone();
    eventually(env, "the container's init is registered", |e| {
        entry(e, &id).is_some_and(|c| c["fds_active"] == 1)
    });
    assert_eq!(
        supervisor_stats(env)["sync_wake_up"],
        true,
        "SYNC_WAKE_UP (Linux 6.6+) should be set on the listeners"
    );
    // Each exec brings its own listener; once the exec'd process exits,
    // the kernel reports the listener unused and the supervisor drops it.
    for _ in 0..3 {
        let out = c.exec(&["cat", "/proc/uptime"]).ok();
        assert!(uptime_secs(&out.stdout).is_some(), "{out}");
    }
    eventually(env, "the exec'd processes' listeners are forgotten", |e| {
        entry(e, &id)
            .is_some_and(|c| c["fds_active"] == 1 && c["fds_registered"].as_u64() >= Some(4))
    });
    // The worker now blocks in a receive on the init's listener: the
    // container's end must still be noticed.
    let out = c.docker(&["rm", "-f", &id]);
    assert_eq!(out.status, 0, "{out}");
    eventually(env, "the removed container is retired", |e| {
        entry(e, &id).is_none()
    });
}
