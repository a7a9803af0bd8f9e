//! containerd as a second engine (issue 3): `ctr run --runc-binary
//! …/syscont-runc` through containerd's runc v2 shim starts a system
//! container, and its host state goes when the container is removed.
//! syscont-runc takes its directories from the environment containerd
//! passes down (scripts/env-up.sh starts the test containerd with them).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const NS: &str = "syscont-test";
const IMAGE: &str = "docker.io/library/syscont-busybox:test";

fn socket() -> String {
    std::env::var("SYSCONT_TEST_CONTAINERD_SOCK")
        .unwrap_or_else(|_| "/run/syscont-test/containerd/containerd.sock".into())
}

fn ctr(args: &[&str]) -> Out {
    run_cmd(
        Command::new("ctr")
            .args(["-a", &socket(), "-n", NS])
            .args(args),
        Duration::from_secs(120),
    )
}

/// Import the busybox image from the test dockerd into containerd (once).
fn image(env: &Env) {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let script = format!(
            "docker save {BUSYBOX} | ctr -a {} -n {NS} images import -",
            socket()
        );
        run_cmd(
            Command::new("sh")
                .args(["-c", &script])
                .env("DOCKER_HOST", &env.docker_host),
            Duration::from_secs(120),
        )
        .ok();
    });
}

fn runtime() -> &'static str {
    env!("CARGO_BIN_EXE_syscont-runc")
}

#[test]
fn ctr_run_starts_a_system_container() {
    let env = require_env!();
    if !env.is_syscont() {
        eprintln!("SKIPPED: about syscont-runc");
        return;
    }
    image(env);
    let id = format!("syscont-ctr-{}", std::process::id());
    let out = ctr(&[
        "run", "--rm", "--runc-binary", runtime(), IMAGE, &id, "sh", "-c",
        "cat /proc/self/uid_map; stat -c %u /bin/busybox; cat /proc/uptime; grep CapEff /proc/self/status",
    ])
    .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let map: Vec<u64> = lines[0]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(map[0], 0);
    assert!(map[1] >= 65536 && map[2] == 65536, "{out}");
    assert_eq!(
        lines[1], "0",
        "image files owned by the container's root:\n{out}"
    );
    // The supervisor serves it: uptime counts from the container's start.
    let up: f64 = lines[2].split_whitespace().next().unwrap().parse().unwrap();
    assert!(up < 30.0, "uptime not the container's:\n{out}");
    let host = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = host
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert!(lines[3].ends_with(bnd), "{out}");
    // --rm removed the container: its host state goes too.
    let dir = syscont_data_dir().join("containers").join(&id);
    let t = Instant::now();
    while dir.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists(), "host state of a removed ctr container kept");
}

#[test]
fn ctr_task_lifecycle_keeps_state_until_the_container_is_removed() {
    let env = require_env!();
    if !env.is_syscont() {
        eprintln!("SKIPPED: about syscont-runc");
        return;
    }
    image(env);
    let id = format!("syscont-ctr-life-{}", std::process::id());
    let _ = ctr(&["task", "kill", "-s", "KILL", &id]);
    let _ = ctr(&["task", "delete", &id]);
    let _ = ctr(&["container", "rm", &id]);
    ctr(&[
        "run",
        "-d",
        "--runc-binary",
        runtime(),
        IMAGE,
        &id,
        "sleep",
        "1000",
    ])
    .ok();
    let exec = ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "cat /proc/self/uid_map; echo kept > /root/f",
    ])
    .ok();
    let first = exec.stdout.clone();
    let dir = syscont_data_dir().join("containers").join(&id);
    assert!(dir.exists());
    ctr(&["task", "kill", "-s", "KILL", &id]).ok();
    let t = Instant::now();
    while ctr(&["task", "delete", &id]).status != 0 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        dir.exists(),
        "state dropped while the container still exists"
    );
    // A new task of the same container: same ids, same files.
    ctr(&["task", "start", "-d", &id]).ok();
    let again = ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        &id,
        "sh",
        "-c",
        "cat /proc/self/uid_map; cat /root/f",
    ])
    .ok();
    assert_eq!(again.stdout, format!("{first}kept\n"));
    ctr(&["task", "kill", "-s", "KILL", &id]).ok();
    let t = Instant::now();
    while ctr(&["task", "delete", &id]).status != 0 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    ctr(&["container", "rm", &id]).ok();
    let t = Instant::now();
    while dir.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists(), "host state kept after ctr container rm");
}
