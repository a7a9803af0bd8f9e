//! Docker features people use keep working with `--runtime=syscont-runc`
//! (issue 3): every option and command below runs against the real
//! dockerd, in a system container (own user namespace, ID-mapped files).

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn volumes_tmpfs_env_user_workdir_readonly() {
    let env = require_env!();
    let host = tempfile::Builder::new()
        .prefix("syscont-feat")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::write(host.path().join("in"), b"from host\n").unwrap();
    let vol = format!("syscont-feat-{}", std::process::id());
    env.docker(&["volume", "create", &vol]).ok();
    let out = env
        .run(BUSYBOX)
        .opt("-v")
        .opt(&format!("{}:/host", host.path().display()))
        .opt("-v")
        .opt(&format!("{vol}:/named"))
        .opt("--tmpfs")
        .opt("/scratch:size=1m")
        .opt("-e")
        .opt("GREETING=hello")
        .opt("-w")
        .opt("/scratch")
        .opt("--read-only")
        .sh("cat /host/in; echo $GREETING; pwd; echo t > /scratch/t && echo tmpfs-ok; \
             echo n > /named/n && echo named-ok; touch /rootfs-file 2>/dev/null || echo readonly-ok; \
             grep ' /scratch ' /proc/mounts | cut -d' ' -f3; stat -c %u /host /named")
        .ok();
    for want in [
        "from host",
        "hello",
        "/scratch",
        "tmpfs-ok",
        "named-ok",
        "readonly-ok",
        "tmpfs",
    ] {
        assert!(out.stdout.contains(want), "{want}:\n{out}");
    }
    assert!(
        out.stdout.ends_with("0\n0\n"),
        "volumes owned by the container's root:\n{out}"
    );
    // The named volume keeps its data for the next container.
    let again = env
        .run(BUSYBOX)
        .opt("-v")
        .opt(&format!("{vol}:/named"))
        .cmd(&["cat", "/named/n"])
        .ok();
    assert_eq!(again.stdout, "n\n");
    env.docker(&["volume", "rm", &vol]).ok();
    // --user: an unprivileged user inside, also unprivileged in the userns.
    let u = env
        .run(BUSYBOX)
        .user("1000:1000")
        .sh("id -u; id -g; cat /proc/self/status | grep CapEff")
        .ok();
    assert!(u.stdout.starts_with("1000\n1000\n"), "{u}");
    assert!(
        u.stdout.contains("0000000000000000"),
        "user 1000 has no capabilities:\n{u}"
    );
}

#[test]
fn resource_limits_and_update() {
    let env = require_env!();
    let c = env
        .run(BUSYBOX)
        .opt("--memory")
        .opt("128m")
        .opt("--cpus")
        .opt("0.5")
        .opt("--cpuset-cpus")
        .opt("0")
        .opt("--pids-limit")
        .opt("50")
        .start(&["sleep", "1000"]);
    let v = c
        .sh("free -k | awk '/Mem:/{print $2}'; nproc; \
             cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
        .ok();
    let lines: Vec<&str> = v.stdout.lines().collect();
    assert_eq!(lines[0], "131072", "memory limit seen by free:\n{v}");
    assert_eq!(lines[1], "1", "{v}");
    assert_eq!(lines[2], "50", "{v}");
    // The pids limit holds inside.
    let fork = c
        .sh("for i in $(seq 1 80); do sleep 30 & done 2>&1 | grep -c 'fork\\|Resource' ; true")
        .ok();
    assert_ne!(
        fork.stdout.trim(),
        "0",
        "80 processes under --pids-limit 50:\n{fork}"
    );
    c.docker(&["update", "--memory", "192m", "--memory-swap", "192m", &c.id])
        .ok();
    let v = c.sh("free -k | awk '/Mem:/{print $2}'").ok();
    assert_eq!(v.stdout.trim(), "196608", "after docker update:\n{v}");
}

#[test]
fn exec_top_logs_pause_kill_and_stop_signal() {
    let env = require_env!();
    let c = env
        .run(BUSYBOX)
        .opt("--stop-signal")
        .opt("SIGUSR1")
        .start(&[
            "sh",
            "-c",
            "trap 'echo got-usr1; exit 0' USR1; echo started; while true; do sleep 0.2; done",
        ]);
    c.wait_log("started", Duration::from_secs(30));
    // exec without and with a terminal.
    assert_eq!(c.exec(&["id", "-u"]).ok().stdout.trim(), "0");
    let tty = run_cmd(
        std::process::Command::new("script")
            .args(["-qec"])
            .arg(format!("docker exec -it {} sh -c 'tty; echo it-ok'", c.id))
            .arg("/dev/null")
            .env("DOCKER_HOST", &env.docker_host),
        Duration::from_secs(60),
    )
    .ok();
    assert!(
        tty.stdout.contains("/dev/pts/") && tty.stdout.contains("it-ok"),
        "{tty}"
    );
    let top = c.docker(&["top", &c.id]).ok();
    assert!(
        top.stdout.contains("sleep") || top.stdout.contains("sh -c"),
        "{top}"
    );
    c.docker(&["pause", &c.id]).ok();
    assert_eq!(c.inspect("{{.State.Status}}"), "paused");
    c.docker(&["unpause", &c.id]).ok();
    assert_eq!(c.exec(&["echo", "alive"]).ok().stdout.trim(), "alive");
    c.docker(&["kill", "-s", "USR1", &c.id]).ok();
    c.wait_log("got-usr1", Duration::from_secs(30));
    // --stop-signal: docker stop sends SIGUSR1 (the trap exits 0 at once).
    c.docker(&["start", &c.id]).ok();
    let t = Instant::now();
    c.docker(&["stop", "-t", "20", &c.id]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "stop waited for the timeout: the stop signal was not delivered"
    );
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0");
    let logs = c.docker(&["logs", &c.id]).ok();
    assert!(logs.stdout.matches("got-usr1").count() >= 2, "{logs}");
}

#[test]
fn restart_policy_and_stop_start_keep_the_container() {
    let env = require_env!();
    let c = env
        .run(BUSYBOX)
        .opt("--restart")
        .opt("on-failure:3")
        .start(&["sh", "-c", "cat /proc/self/uid_map; n=$(cat /count 2>/dev/null || echo 0); echo $((n+1)) > /count; [ $n -ge 2 ] && sleep 1000; exit 1"]);
    let t = Instant::now();
    while c.inspect("{{.RestartCount}}") != "2" && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(c.inspect("{{.RestartCount}}"), "2");
    let t = Instant::now();
    while c.inspect("{{.State.Status}}") != "running" && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = c.docker(&["logs", &c.id]).ok().stdout;
    let maps: std::collections::BTreeSet<&str> = logs.lines().collect();
    assert_eq!(
        maps.len(),
        1,
        "the id range changed across restarts:\n{logs}"
    );
    assert_eq!(c.exec(&["cat", "/count"]).ok().stdout.trim(), "3");
    c.docker(&["stop", "-t", "1", &c.id]).ok();
    c.docker(&["start", &c.id]).ok();
    assert_eq!(
        c.exec(&["cat", "/count"]).ok().stdout.trim(),
        "4",
        "rootfs kept across stop/start"
    );
    c.docker(&["rm", "-f", &c.id]).ok();
}

#[test]
fn cp_and_commit() {
    let env = require_env!();
    let c = env.run(BUSYBOX).start(&["sleep", "1000"]);
    c.sh("echo made > /etc/made-inside").ok();
    let tmp = tempfile::tempdir().unwrap();
    let back = tmp.path().join("back");
    c.docker(&[
        "cp",
        &format!("{}:/etc/made-inside", c.id),
        back.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "made\n");
    let f = tmp.path().join("payload");
    std::fs::write(&f, b"payload\n").unwrap();
    c.docker(&[
        "cp",
        f.to_str().unwrap(),
        &format!("{}:/root/payload", c.id),
    ])
    .ok();
    let seen = c.sh("stat -c '%u %s' /root/payload").ok();
    assert_eq!(
        seen.stdout.trim(),
        "0 8",
        "docker cp'd file owned by the container's root:\n{seen}"
    );
    let diff = c.docker(&["diff", &c.id]).ok().stdout;
    assert!(
        diff.contains("A /etc/made-inside") && diff.contains("A /root/payload"),
        "{diff}"
    );
    let tag = format!("syscont-feat-commit-{}:test", std::process::id());
    c.docker(&["commit", &c.id, &tag]).ok();
    let out = env
        .run(&tag)
        .cmd(&[
            "sh",
            "-c",
            "cat /etc/made-inside /root/payload; stat -c %u /etc/made-inside",
        ])
        .ok();
    env.docker(&["rmi", &tag]).ok();
    assert_eq!(out.stdout, "made\npayload\n0\n");
    // A stopped container: cp both ways through the engine's own mount.
    c.docker(&["stop", "-t", "1", &c.id]).ok();
    c.docker(&[
        "cp",
        f.to_str().unwrap(),
        &format!("{}:/etc/payload2", c.id),
    ])
    .ok();
    c.docker(&["start", &c.id]).ok();
    assert_eq!(
        c.sh("stat -c %u /etc/payload2; cat /etc/payload2")
            .ok()
            .stdout,
        "0\npayload\n"
    );
}
