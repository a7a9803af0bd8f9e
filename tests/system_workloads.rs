//! System workloads (issue 4): systemd as PID 1 and Docker inside a system
//! container, with no flag from the user, on the debootstrapped
//! `syscont-systemd:test` image (bookworm + systemd + docker.io, built by
//! scripts/images.sh). Inner containers use the busybox test image,
//! exported from the test dockerd and imported inside.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SYSTEMD: &str = "syscont-systemd:test";

fn syscont_env() -> Option<&'static Env> {
    let env = common::env()?;
    if !env.is_syscont() {
        eprintln!("SKIPPED: about syscont-runc");
        return None;
    }
    Some(env)
}

/// Poll `check` every 250 ms until it gives `Some`, or fail after `limit`
/// with `what` and the last output.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => {
                assert!(start.elapsed() < limit, "{what} within {limit:?}:\n{last}");
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Wait until systemd in `c` says `running`; any other final state fails
/// with the failed units.
fn wait_running(c: &Container) {
    wait_for(Duration::from_secs(120), "systemd running", || {
        let o = c.exec(&["systemctl", "is-system-running"]);
        match o.stdout.trim() {
            "running" => Ok(()),
            "degraded" => {
                let failed = c.exec(&["systemctl", "--failed", "--no-pager"]);
                panic!("systemd degraded:\n{failed}");
            }
            _ => Err(o.to_string()),
        }
    })
}

/// The busybox test image as a tarball inside container `c` at `/tmp/bb.tar`,
/// imported there as `bb:1` by the inner dockerd.
fn import_busybox_inside(env: &Env, c: &Container) {
    let tmp = env.docker(&["create", BUSYBOX, "true"]).ok();
    let id = tmp.stdout.trim().to_string();
    let tar = std::env::temp_dir().join(format!("syscont-bb-{}.tar", std::process::id()));
    let out = env.docker(&["export", "-o", tar.to_str().unwrap(), &id]);
    env.docker(&["rm", &id]).ok();
    out.ok();
    let file = std::fs::File::open(&tar).unwrap();
    let st = Command::new("docker")
        .env("DOCKER_HOST", &env.docker_host)
        .args(["exec", "-i", &c.id, "sh", "-c", "cat > /tmp/bb.tar"])
        .stdin(Stdio::from(file))
        .status()
        .unwrap();
    let _ = std::fs::remove_file(&tar);
    assert!(st.success(), "copying the busybox tarball in failed");
    c.exec(&["docker", "import", "/tmp/bb.tar", "bb:1"]).ok();
}

/// `docker run --rm --pull never --network none OPTS bb:1 sh -c SCRIPT`
/// by the inner dockerd of `c`; must succeed.
fn inner_sh(c: &Container, opts: &[&str], script: &str) -> Out {
    let mut a = vec![
        "docker",
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
    ];
    a.extend_from_slice(opts);
    a.extend_from_slice(&["bb:1", "sh", "-c", script]);
    c.exec(&a).ok()
}

fn wait_inner_docker(c: &Container) {
    wait_for(
        Duration::from_secs(60),
        "the inner dockerd answering",
        || {
            let o = c.exec(&["docker", "version", "--format", "{{.Server.Version}}"]);
            if o.status == 0 {
                Ok(())
            } else {
                Err(o.to_string())
            }
        },
    )
}

#[test]
fn systemd_boots_to_running_journals_and_stops_cleanly() {
    let Some(env) = syscont_env() else { return };
    let host_pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    // No flag: the image's command is /sbin/init.
    let c = env.run(SYSTEMD).start(&[]);
    wait_running(&c);
    let virt = c.exec(&["systemd-detect-virt", "--container"]);
    assert_eq!(virt.status, 0, "not seen as a container: {virt}");
    assert_ne!(virt.stdout.trim(), "none", "{virt}");
    // journald works: a line logged is read back.
    c.sh("logger -t syscont-probe journal-works").ok();
    wait_for(Duration::from_secs(10), "the journal line", || {
        let j = c.exec(&["journalctl", "-t", "syscont-probe", "--no-pager"]);
        if j.stdout.contains("journal-works") {
            Ok(())
        } else {
            Err(j.to_string())
        }
    });
    // systemd-sysctl ran and succeeded, and the container has its values
    // (Debian's 50-pid-max.conf), not the host's.
    let s = c.exec(&["systemctl", "is-active", "systemd-sysctl"]);
    assert_eq!(s.stdout.trim(), "active", "{s}");
    let pid_max = c.exec(&["cat", "/proc/sys/kernel/pid_max"]).ok();
    assert_eq!(pid_max.stdout.trim(), "4194304", "{pid_max}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap(),
        host_pid_max,
        "the host's pid_max changed"
    );
    // docker stop: systemd gets its shutdown signal (not SIGTERM, which it
    // takes as re-execute) and the container exits 0 well within Docker's
    // 10 s grace period (no SIGKILL).
    let t = Instant::now();
    c.docker(&["stop", &c.id]).ok();
    let took = t.elapsed();
    assert_eq!(
        c.inspect("{{.State.ExitCode}}"),
        "0",
        "not a clean shutdown"
    );
    assert!(took < Duration::from_secs(8), "docker stop took {took:?}");
    // And it boots again.
    c.docker(&["start", &c.id]).ok();
    wait_running(&c);
}

#[test]
fn docker_inside_runs_builds_and_sees_its_own_limits() {
    let Some(env) = syscont_env() else { return };
    let c = env.run(SYSTEMD).start(&[]);
    wait_running(&c);
    let active = c.exec(&["systemctl", "is-active", "docker"]);
    assert_eq!(active.stdout.trim(), "active", "{active}");
    wait_inner_docker(&c);
    let info = c.exec(&["docker", "info", "--format", "{{.Driver}}"]).ok();
    assert_eq!(info.stdout.trim(), "overlay2", "{info}");
    import_busybox_inside(env, &c);
    // An inner container with --memory sees that limit: the innermost
    // cgroup wins (meminfo from the file, free from sysinfo(2)).
    let o = inner_sh(
        &c,
        &["--memory", "64m"],
        "cat /proc/meminfo; echo ---; free",
    );
    assert_eq!(meminfo_kb(&o.stdout, "MemTotal"), Some(65536), "{o}");
    let free_total = o
        .stdout
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(free_total, Some(65536), "free (sysinfo) inside:\n{o}");
    // docker build with RUN and COPY.
    let b = c.sh(
        "mkdir -p /tmp/ctx && cd /tmp/ctx && echo copied > f.txt && \
         printf 'FROM bb:1\\nRUN echo ran > /ran && cp /bin/busybox /bin/sbb && chmod u+s /bin/sbb\\nCOPY f.txt /f.txt\\n' > Dockerfile && \
         docker build -q -t built:1 . && \
         docker run --rm --pull never --network none built:1 sh -c 'cat /ran /f.txt; stat -c %A /bin/sbb'",
    );
    // A set-uid file in an inner image (as `apt install sudo` makes): the
    // inner engine's directories are the container's own, like its rootfs.
    assert!(
        b.stdout.ends_with("ran\ncopied\n-rwsr-xr-x\n"),
        "docker build inside:\n{b}"
    );
    // The inner state survives stop/start (kept per container on the host).
    c.docker(&["stop", &c.id]).ok();
    c.docker(&["start", &c.id]).ok();
    wait_running(&c);
    wait_inner_docker(&c);
    let images = c
        .exec(&["docker", "images", "--format", "{{.Repository}}"])
        .ok();
    assert!(images.stdout.contains("built"), "{images}");
}

#[test]
fn dockerd_started_by_hand_without_systemd() {
    let Some(env) = syscont_env() else { return };
    let c = env.run(SYSTEMD).start(&["sleep", "infinity"]);
    c.exec_opts(&["-d"], &["sh", "-c", "dockerd >/var/log/dockerd.log 2>&1"])
        .ok();
    wait_inner_docker(&c);
    import_busybox_inside(env, &c);
    let o = inner_sh(&c, &[], "id -u; cat /proc/self/uid_map");
    assert!(o.stdout.starts_with("0\n"), "{o}");
}

#[test]
fn mounts_inside_work_and_the_protected_ones_stay() {
    let Some(env) = syscont_env() else { return };
    let c = env.run(BUSYBOX).limited().start(&["sleep", "1000"]);
    // Mounts system software does.
    let o = c
        .sh(
            "set -e; mkdir -p /m/p /m/s /m/t /m/b /m/l /m/u /m/w /m/o; \
             mount -t proc proc /m/p; grep MemTotal /m/p/meminfo; \
             mount -t sysfs sysfs /m/s; ls /m/s/class/net; echo ---; \
             mount -t tmpfs -o size=1m tmpfs /m/t; mount -o remount,size=2m tmpfs /m/t; \
             echo x > /m/t/f; mount --bind /m/t /m/b; cat /m/b/f; \
             mount -t tmpfs tmpfs /m/l; mkdir /m/l/low /m/t/up /m/t/work; echo low > /m/l/low/g; \
             mount -t overlay overlay -o lowerdir=/m/l/low,upperdir=/m/t/up,workdir=/m/t/work /m/o; \
             cat /m/o/g; umount /m/o /m/b /m/t /m/l /m/s /m/p; echo done",
        )
        .ok();
    // A procfs mounted inside is emulated like /proc.
    assert_eq!(meminfo_kb(&o.stdout, "MemTotal"), Some(MEM_LIMIT_KB), "{o}");
    // A sysfs mounted inside shows the container's interfaces: exactly
    // those of its own network namespace.
    let ifaces: Vec<&str> = o
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("MemTotal"))
        .skip(1)
        .take_while(|l| *l != "---")
        .collect();
    let own = c.sh("ls /sys/class/net").ok();
    assert_eq!(ifaces, own.stdout.lines().collect::<Vec<_>>(), "{o}");
    assert!(o.stdout.ends_with("x\nlow\ndone\n"), "{o}");

    // A procfs mounted inside hides what the engine masks in /proc (the
    // host's timer list is not empty).
    assert!(std::fs::read("/proc/timer_list").unwrap().len() > 100);
    let masked = c
        .sh(
            "mkdir -p /m/q; mount -t proc proc /m/q; cat /m/q/timer_list | wc -c; \
             cd /m/q && cat keys timer_list | wc -c; cd /; umount /m/q",
        )
        .ok();
    assert_eq!(masked.stdout, "0\n0\n", "{masked}");

    // The protected mounts: every mount on /proc or /sys, whatever path
    // names it.
    let table = c.exec(&["cat", "/proc/self/mountinfo"]).ok().stdout;
    let protected: Vec<String> = protected_mounts(&table);
    assert!(
        protected.iter().any(|p| p.starts_with("/proc/")),
        "no mask over /proc to test:\n{table}"
    );
    let masked = protected.iter().find(|p| p.starts_with("/proc/")).unwrap();
    let name = masked.trim_start_matches("/proc/");
    let script = format!(
        "mkdir -p /m/x; ln -sf {masked} /m/link; \
         umount {masked}; echo umount=$?; \
         umount -l {masked}; echo lazy=$?; \
         cd /proc && umount {name}; echo relative=$?; cd /; \
         umount /proc/self/../{name}; echo dotdot=$?; \
         umount /m/link; echo symlink=$?; \
         mount --move {masked} /m/x; echo move=$?; \
         mount -o remount,rw /sys; echo remount_sys=$?; \
         mount -o remount,bind,rw /proc/bus 2>/dev/null || mount -o remount,bind,rw /proc/sysrq-trigger; echo remount_ro_bind=$?; \
         mount --bind /proc /m/x; echo bind_proc=$?; \
         mount --rbind /proc /m/x; echo rbind_proc=$?; umount -l /m/x; \
         mount -o remount,bind,ro /proc/bus 2>/dev/null || mount -o remount,bind,ro /proc/sysrq-trigger; echo remount_ro=$?"
    );
    let o = c.sh(&script);
    let kv = kv_lines(&o.stdout.replace('=', " "));
    for case in [
        "umount",
        "lazy",
        "relative",
        "dotdot",
        "symlink",
        "move",
        "remount_sys",
        "remount_ro_bind",
        "bind_proc",
    ] {
        assert_ne!(
            kv.get(case).map(String::as_str),
            Some("0"),
            "{case} was allowed:\n{o}"
        );
        assert!(kv.contains_key(case), "{case} missing:\n{o}");
    }
    // A recursive bind keeps the masks, and making things read-only is fine.
    for case in ["rbind_proc", "remount_ro"] {
        assert_eq!(kv.get(case).map(String::as_str), Some("0"), "{case}:\n{o}");
    }
    // Still there, all of them.
    let after = c.exec(&["cat", "/proc/self/mountinfo"]).ok().stdout;
    assert_eq!(protected_mounts(&after), protected, "{after}");
    let stats = supervisor_stats(env);
    let refused = stats["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == c.id.as_str())
        .map(|x| x["mounts_refused"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    assert!(refused >= 6, "refusals not counted: {refused}");
}

/// Mount points of the mounts on a procfs or sysfs mount, in table order.
fn protected_mounts(table: &str) -> Vec<String> {
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .collect();
    fn fstype<'a>(r: &[&'a str]) -> Option<&'a str> {
        r.iter()
            .position(|f| *f == "-")
            .and_then(|i| r.get(i + 1))
            .copied()
    }
    rows.iter()
        .filter(|r| {
            rows.iter().any(|p| {
                p[0] == r[1] && p[0] != r[0] && matches!(fstype(p), Some("proc") | Some("sysfs"))
            })
        })
        .map(|r| r[4].to_string())
        .collect()
}

/// `key value` lines as a map.
fn kv_lines(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

#[test]
fn namespaced_sysctls_are_the_containers_own() {
    let Some(env) = syscont_env() else { return };
    let host_somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let a = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let b = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let o = a
        .sh(
            "sysctl -w net.core.somaxconn=1234 && sysctl -w kernel.shmmni=2345 && \
             cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni",
        )
        .ok();
    assert!(o.stdout.ends_with("1234\n2345\n"), "{o}");
    let other = b
        .sh("cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni")
        .ok();
    assert_ne!(other.stdout, "1234\n2345\n", "seen by another container");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host_somaxconn
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni
    );
    // A sysctl of the host's stays the host's.
    let w = a.sh("echo 1 > /proc/sys/kernel/sysrq_test_never 2>/dev/null; echo 1 > /proc/sys/vm/drop_caches; echo rc=$?");
    assert!(!w.stdout.contains("rc=0"), "{w}");
}

#[test]
fn exec_gets_the_containers_capabilities() {
    let Some(env) = syscont_env() else { return };
    let c = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let init = c.exec(&["sh", "-c", "grep CapBnd /proc/1/status"]).ok();
    let exec = c.exec(&["grep", "CapEff", "/proc/self/status"]).ok();
    let want = init.stdout.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(
        exec.stdout.split_whitespace().nth(1),
        Some(want.as_str()),
        "docker exec as root lacks the container's capabilities:\n{init}\n{exec}"
    );
    let user = c
        .exec_opts(&["-u", "1000"], &["grep", "CapEff", "/proc/self/status"])
        .ok();
    assert_eq!(
        user.stdout.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{user}"
    );
}

#[test]
fn host_sysctls_are_emulated_per_container() {
    let Some(env) = syscont_env() else { return };
    let host = |k: &str| std::fs::read_to_string(format!("/proc/sys/{k}")).unwrap();
    let host_panic = host("kernel/panic");
    let host_om = host("vm/overcommit_memory");
    let a = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let b = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let want_panic = if host_panic.trim() == "7" { "8" } else { "7" };
    let o = a
        .sh(&format!(
            "sysctl -w kernel.panic={want_panic} && cat /proc/sys/kernel/panic; \
             echo 2 > /proc/sys/vm/overcommit_memory; cat /proc/sys/vm/overcommit_memory; \
             echo 9 > /proc/sys/vm/overcommit_memory; cat /proc/sys/vm/overcommit_memory; \
             cd /proc/sys/kernel && cat panic"
        ))
        .ok();
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("kernel.panic = {want_panic}").as_str(),
            want_panic,
            "2",
            // 9 is out of range: the kernel would refuse it; the last
            // valid value stays.
            "2",
            want_panic
        ],
        "{o}"
    );
    // A user other than the container's root may not write.
    let u = a.sh("su user -c 'echo 1 > /proc/sys/kernel/panic' 2>&1; cat /proc/sys/kernel/panic");
    assert!(u.stdout.ends_with(&format!("{want_panic}\n")), "{u}");
    // The host and the other container keep theirs.
    assert_eq!(host("kernel/panic"), host_panic);
    assert_eq!(host("vm/overcommit_memory"), host_om);
    let other = b
        .sh("cat /proc/sys/kernel/panic /proc/sys/vm/overcommit_memory")
        .ok();
    assert_eq!(other.stdout, format!("{host_panic}{host_om}"), "{other}");
    // kernel.hostname is the UTS namespace's: written through /proc/sys,
    // it is the container's name from its next trapped call on (here the
    // read of the file itself).
    let host_name = host("kernel/hostname");
    let n = a
        .sh("echo box-one > /proc/sys/kernel/hostname && cat /proc/sys/kernel/hostname && hostname; \
             sysctl -w kernel.hostname=box-two >/dev/null && sysctl -n kernel.hostname && uname -n")
        .ok();
    assert_eq!(n.stdout, "box-one\nbox-one\nbox-two\nbox-two\n", "{n}");
    assert_eq!(
        host("kernel/hostname"),
        host_name,
        "the host's name changed"
    );
    let other_name = b.exec(&["hostname"]).ok();
    assert!(!other_name.stdout.starts_with("box-"), "{other_name}");
    // Kept across stop and start.
    a.docker(&["restart", "-t", "1", &a.id]).ok();
    let again = a.exec(&["cat", "/proc/sys/kernel/panic"]).ok();
    assert_eq!(again.stdout.trim(), want_panic, "{again}");
}

#[test]
fn an_overlay_mounted_inside_is_judged_by_its_upper_directory() {
    let Some(env) = syscont_env() else { return };
    let vol = tempfile::Builder::new()
        .prefix("syscont-ovl-vol")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(
        vol.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let c = env
        .run(BUSYBOX)
        .opt("-v")
        .opt(&format!("{}:/vol", vol.path().display()))
        .start(&["sleep", "1000"]);
    // Upper directory in the volume: a set-uid file made through the
    // overlay would be a set-uid root file on the host. On a tmpfs of the
    // container's own: fine (overlay cannot have its upper layer on the
    // rootfs, itself an overlay).
    let o = c.sh(
        "mkdir -p /low /m/v /m/r /vol/up /vol/work /r; mount -t tmpfs t /r; mkdir /r/up /r/work; \
         cp /bin/busybox /low/bb; \
         mount -t overlay o -o lowerdir=/low,upperdir=/vol/up,workdir=/vol/work /m/v; \
         chmod u+s /m/v/bb; echo volume=$?; \
         mount -t overlay o -o lowerdir=/low,upperdir=/r/up,workdir=/r/work /m/r; \
         chmod u+s /m/r/bb; echo own_tmpfs=$?; \
         cd /vol && mount -t overlay o -o lowerdir=/low,upperdir=up,workdir=work /m/r; \
         chmod u+s /m/r/bb; echo relative_volume=$?",
    );
    let kv = kv_lines(&o.stdout.replace('=', " "));
    assert_ne!(kv.get("volume").map(String::as_str), Some("0"), "{o}");
    assert_eq!(kv.get("own_tmpfs").map(String::as_str), Some("0"), "{o}");
    assert_ne!(
        kv.get("relative_volume").map(String::as_str),
        Some("0"),
        "{o}"
    );
    assert!(
        kv.contains_key("volume") && kv.contains_key("relative_volume"),
        "{o}"
    );
    let up = vol.path().join("up/bb");
    if let Ok(m) = std::fs::metadata(&up) {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            m.permissions().mode() & 0o6000,
            0,
            "set-id file on the host"
        );
    }
}
