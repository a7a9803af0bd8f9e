//! What system software inside needs, set up by the runtime without any
//! flag (the spec side; tests/system_workloads.rs boots systemd and runs
//! Docker inside): per-container directories for inner
//! engines on `/var/lib/docker` and `/var/lib/containerd`, and for an
//! init, tmpfs on `/run` and `/run/lock` and `container` in its
//! environment.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn inner_engine_directories_are_host_directories_of_the_container() {
    let env = require_env!();
    if !env.is_syscont() {
        eprintln!("SKIPPED: about syscont-runc");
        return;
    }
    let c = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let out = c
        .sh("for d in /var/lib/docker /var/lib/containerd; do stat -c '%u %g' $d; stat -f -c %T $d; done; \
             echo kept > /var/lib/docker/state")
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for pair in lines.chunks(2) {
        assert_eq!(pair[0], "0 0", "owned by the container's root:\n{out}");
        assert_ne!(
            pair[1], "overlayfs",
            "an inner engine needs a non-overlay directory:\n{out}"
        );
    }
    let host = syscont_data_dir()
        .join("containers")
        .join(&c.id)
        .join("inner/docker/state");
    assert!(host.exists(), "not on the host at {}", host.display());
    c.docker(&["stop", "-t", "1", &c.id]).ok();
    c.docker(&["start", &c.id]).ok();
    assert_eq!(
        c.exec(&["cat", "/var/lib/docker/state"]).ok().stdout,
        "kept\n"
    );
    // Not part of the image: docker diff shows at most the mount points.
    let diff = c.docker(&["diff", &c.id]).ok().stdout;
    assert!(!diff.contains("/var/lib/docker/state"), "{diff}");
    c.docker(&["rm", "-f", &c.id]).ok();
    let t = Instant::now();
    while host.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!host.exists(), "inner engine state kept after docker rm");
}

#[test]
fn an_init_gets_tmpfs_run_and_the_container_variable() {
    let env = require_env!();
    if !env.is_syscont() {
        eprintln!("SKIPPED: about syscont-runc");
        return;
    }
    // busybox's own init as PID 1.
    let c = env.run(BUSYBOX).start(&["/sbin/init"]);
    let out = c.sh("stat -f -c %T /run /run/lock").ok();
    assert_eq!(out.stdout, "tmpfs\ntmpfs\n", "{out}");
    // The init's environment, read on the host.
    let environ = std::fs::read(format!("/proc/{}/environ", c.host_pid())).unwrap();
    let vars: Vec<&[u8]> = environ.split(|&b| b == 0).collect();
    assert!(
        vars.contains(&&b"container=syscont"[..]),
        "{:?}",
        String::from_utf8_lossy(&environ)
    );
    // A plain command gets neither.
    let plain = env
        .run(BUSYBOX)
        .sh("stat -f -c %T /run 2>/dev/null || echo none; tr '\\0' '\\n' < /proc/self/environ | grep -c ^container= || true")
        .ok();
    assert!(!plain.stdout.starts_with("tmpfs"), "{plain}");
    assert!(plain.stdout.ends_with("0\n"), "{plain}");
}
