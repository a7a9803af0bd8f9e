//! A supervisor crash or restart costs running containers nothing: trapped
//! calls wait and then complete (no ENOSYS, no host figures), and processes
//! started before the restart are still served. Restarts the test
//! supervisor (by the pid file of scripts/env-up.sh, which starts the new
//! one), so it lives in a test binary of its own.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn run_dir() -> PathBuf {
    std::env::var_os("SYSCONT_TEST_RUN")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/run/syscont-test".into())
}

/// Stop the running supervisor with SIGNAL, leave the containers without
/// it for a second — while a `docker exec` into `during` starts, if given —
/// then start a new one with scripts/env-up.sh. Returns that exec's output.
fn restart_supervisor(
    signal: libc::c_int,
    docker_host: &str,
    during: Option<&Container>,
) -> Option<Out> {
    let pidfile = run_dir().join("supervisor.pid");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no supervisor pid in {}", pidfile.display()));
    // SAFETY: kill(2) on the pid that scripts/env-up.sh recorded for the
    // supervisor it started; no memory is involved.
    assert_eq!(
        unsafe { libc::kill(pid, signal) },
        0,
        "kill supervisor {pid}"
    );
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "supervisor {pid} did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // No supervisor now: an exec connects to the agent socket that the fd
    // holder keeps listening, and waits for the next supervisor.
    let exec = during.map(|c| {
        let args = vec![
            "exec".to_string(),
            c.id.clone(),
            "cat".into(),
            "/proc/meminfo".into(),
        ];
        let host = docker_host.to_string();
        std::thread::spawn(move || {
            run_cmd(
                Command::new("docker").env("DOCKER_HOST", host).args(&args),
                Duration::from_secs(120),
            )
        })
    });
    std::thread::sleep(Duration::from_secs(1));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/env-up.sh");
    run_cmd(Command::new("bash").arg(script), Duration::from_secs(120)).ok();
    exec.map(|h| h.join().expect("exec thread"))
}

#[test]
fn supervisor_restart_and_crash_cost_running_containers_nothing() {
    let env = require_env!(supervisor);
    let idle = env.run(BUSYBOX).limited().start(&["sleep", "300"]);
    // SIGTERM: the supervisor finishes the call it is answering, so a reader
    // reading flat out loses nothing. SIGKILL: a call received but not yet
    // answered at the instant of the kill can never be answered (the kernel
    // does not hand it out again; docs/limitations.md), so that reader
    // pauses between reads, as any real program does, and the kill lands
    // between calls.
    for (name, signal, pause_us) in [
        ("SIGTERM", libc::SIGTERM, "0"),
        ("SIGKILL", libc::SIGKILL, "20000"),
    ] {
        let reader = env.run(BUSYBOX).limited().hostile().start(&[
            "hostile",
            "memcheck",
            "6",
            &MEM_LIMIT_KB.to_string(),
            pause_us,
        ]);
        std::thread::sleep(Duration::from_millis(1500));
        let during =
            restart_supervisor(signal, &env.docker_host, Some(&idle)).expect("an exec was started");
        // Started while no supervisor ran: served by the next one.
        assert_eq!(
            meminfo_kb(&during.stdout, "MemTotal"),
            Some(MEM_LIMIT_KB),
            "exec started during the {name} gap:\n{during}"
        );
        // Before waiting for it: if the reader is still running after its
        // 6 s and a margin, say where it is stuck (for the failure message).
        let pid = reader.host_pid();
        let t = Instant::now();
        while reader.inspect("{{.State.Running}}") == "true"
            && t.elapsed() < Duration::from_secs(45)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        if reader.inspect("{{.State.Running}}") == "true" {
            let read =
                |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
            panic!(
                "reader across a supervisor {name} still running: wchan={} syscall={}\nstack:\n{}\nfds: {:?}",
                read("wchan"),
                read("syscall"),
                read("stack"),
                std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|d| d.flatten().map(|e| std::fs::read_link(e.path()).unwrap_or_default()).collect::<Vec<_>>())
                    .unwrap_or_default()
            );
        }
        assert_clean_counts(
            &reader,
            Duration::from_secs(60),
            "memcheck",
            &format!("reads across a supervisor {name}"),
        );
        let out = idle.exec(&["cat", "/proc/meminfo"]).ok();
        assert_eq!(
            meminfo_kb(&out.stdout, "MemTotal"),
            Some(MEM_LIMIT_KB),
            "exec into a container started before the {name}:\n{out}"
        );
        let out = idle.exec(&["sh", "-c", "cat /proc/uptime"]).ok();
        assert!(
            uptime_secs(&out.stdout).is_some_and(|u| u >= 1.0),
            "uptime after the {name}:\n{out}"
        );
    }
    killed_mid_call_is_recovered(env);
    assert_supervisor_serving(env);
}

/// SIGKILL while a caller makes `sysinfo(2)` calls flat out: most kills land
/// on a call received and not yet answered. The next supervisor serves it
/// from its in-flight record: the caller never hangs and every answer is
/// right. Killed until a recovery was counted (at most 10 times).
fn killed_mid_call_is_recovered(env: &Env) {
    let reader = env.run(BUSYBOX).limited().hostile().start(&[
        "hostile",
        "sysinfocheck",
        "30",
        &MEM_LIMIT_BYTES.to_string(),
    ]);
    let recovered = |env: &Env| -> u64 {
        supervisor_stats(env)["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["id"] == reader.id.as_str())
            .map(|c| c["recovered"].as_u64().unwrap_or(0))
            .sum()
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut kills = 0;
    let mut got = 0;
    while kills < 10 && got == 0 {
        restart_supervisor(libc::SIGKILL, &env.docker_host, None);
        kills += 1;
        // The new supervisor serves what waited: give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        got = recovered(env);
    }
    assert!(
        got > 0,
        "no call recovered after {kills} kills of the supervisor during sysinfo calls"
    );
    assert_clean_counts(
        &reader,
        Duration::from_secs(90),
        "sysinfocheck",
        &format!("sysinfo across {kills} supervisor kills"),
    );
}

/// The hostile `reader` exits 0 within `limit` and its `MODE reads=… wrong=0
/// bad=0` line says no call failed or saw another container's figures.
fn assert_clean_counts(reader: &Container, limit: Duration, mode: &str, what: &str) {
    let w = reader.wait(limit);
    let logs = reader.docker(&["logs", &reader.id]);
    assert_eq!(w.stdout.trim(), "0", "{what}: reader {w}\n{logs}");
    let line = logs
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{mode} ")))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        line.contains(" wrong=0 ") && line.ends_with(" bad=0"),
        "{what} failed or saw the host: {line}"
    );
}
