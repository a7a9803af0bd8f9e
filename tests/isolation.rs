//! Strong isolation (issue 3): every container runs in its own user
//! namespace with an exclusive id range, its files are owned by its root
//! through ID-mapped mounts, its root has every capability the host can
//! grant inside and none outside, its cgroups are delegated, and the
//! things a hostile root would try to break out fail.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// `(inside, outside, count)` of the first line of a uid_map/gid_map.
fn map_line(text: &str) -> (u64, u64, u64) {
    let v: Vec<u64> = text
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().expect("number in id map"))
        .collect();
    assert_eq!(v.len(), 3, "bad id map {text:?}");
    (v[0], v[1], v[2])
}

fn status_field(pid: u32, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

fn syscont_only(env: &Env) -> bool {
    if !env.is_syscont() {
        eprintln!("SKIPPED: isolation tests are about syscont-runc");
    }
    env.is_syscont()
}

#[test]
fn each_container_has_its_own_exclusive_range_and_is_unprivileged_on_the_host() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let a = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let b = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let ma = map_line(&a.exec(&["cat", "/proc/self/uid_map"]).ok().stdout);
    let mb = map_line(&b.exec(&["cat", "/proc/self/uid_map"]).ok().stdout);
    let ga = map_line(&a.exec(&["cat", "/proc/self/gid_map"]).ok().stdout);
    for m in [ma, mb, ga] {
        assert_eq!(m.0, 0, "container root is id 0 inside");
        assert!(m.1 >= 65536, "range starts above the host's own ids: {m:?}");
        assert_eq!(m.2, 65536, "65536 ids by default");
    }
    assert!(
        ma.1 + ma.2 <= mb.1 || mb.1 + mb.2 <= ma.1,
        "ranges overlap: {ma:?} {mb:?}"
    );
    // Inside: root. On the host: the range's first uid, no capabilities.
    assert_eq!(a.exec(&["id", "-u"]).ok().stdout.trim(), "0");
    let pid = a.host_pid();
    let uids = status_field(pid, "Uid:");
    assert!(
        uids.split_whitespace().all(|u| u == ma.1.to_string()),
        "host uids of the container's init: {uids}"
    );
    let gids = status_field(pid, "Gid:");
    assert!(
        gids.split_whitespace().all(|g| g == ga.1.to_string()),
        "{gids}"
    );
    // Its user namespace is not the host's.
    let host_ns = std::fs::read_link("/proc/self/ns/user").unwrap();
    let its_ns = std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap();
    assert_ne!(host_ns, its_ns);
}

#[test]
fn twenty_containers_created_at_once_get_disjoint_ranges() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let run = env.run(BUSYBOX);
            std::thread::spawn(move || {
                // Not through Slot: the point is 20 creates at the same time.
                let c = run.start_unlimited(&["sleep", "1000"]);
                let m = map_line(&c.exec(&["cat", "/proc/self/uid_map"]).ok().stdout);
                let g = map_line(&c.exec(&["cat", "/proc/self/gid_map"]).ok().stdout);
                (c, m, g)
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let uids: BTreeSet<u64> = got.iter().map(|(_, m, _)| m.1).collect();
    let gids: BTreeSet<u64> = got.iter().map(|(_, _, g)| g.1).collect();
    assert_eq!(uids.len(), 20, "uid ranges shared: {uids:?}");
    assert_eq!(gids.len(), 20, "gid ranges shared: {gids:?}");
    let v: Vec<u64> = uids.into_iter().collect();
    for w in v.windows(2) {
        assert!(w[0] + 65536 <= w[1], "overlap {w:?}");
    }
}

#[test]
fn rootfs_and_docker_binds_belong_to_the_container_root_and_writes_land_unshifted() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let vol = tempfile::Builder::new()
        .prefix("syscont-vol")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::write(vol.path().join("from-host"), b"h").unwrap();
    let c = env
        .run(BUSYBOX)
        .opt("-v")
        .opt(&format!("{}:/vol", vol.path().display()))
        .start(&["sleep", "1000"]);
    let out = c
        .sh("stat -c '%u:%g %n' / /bin /etc/hosts /etc/hostname /etc/resolv.conf /vol /vol/from-host \
             && echo x > /vol/from-container && echo y > /etc/new-in-rootfs && chown 1000:1000 /etc/new-in-rootfs \
             && mkdir /vol/d && chown 123:456 /vol/d")
        .ok();
    for line in out.stdout.lines() {
        assert!(
            line.starts_with("0:0 "),
            "not owned by the container's root: {line}\n{out}"
        );
    }
    // On the host the container's writes are owned as in a normal container.
    let md = std::fs::metadata(vol.path().join("from-container")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0));
    let md = std::fs::metadata(vol.path().join("d")).unwrap();
    assert_eq!((md.uid(), md.gid()), (123, 456));
    // docker diff / cp / commit see the rootfs change with its owner.
    let diff = c.docker(&["diff", &c.id]).ok().stdout;
    assert!(diff.contains("/etc/new-in-rootfs"), "{diff}");
    let tag = format!("syscont-commit-{}:test", std::process::id());
    c.docker(&["commit", &c.id, &tag]).ok();
    let seen = env
        .run_plain_runc(&tag)
        .cmd(&["stat", "-c", "%u:%g", "/etc/new-in-rootfs"])
        .ok();
    c.docker(&["rmi", &tag]).ok();
    assert_eq!(
        seen.stdout.trim(),
        "1000:1000",
        "owner in the committed image"
    );
}

#[test]
fn root_has_every_host_capability_inside_and_cgroups_are_delegated() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let host = status_field(std::process::id(), "CapBnd:");
    let out = env
        .run(BUSYBOX)
        .sh("grep -E '^Cap(Eff|Bnd|Prm):' /proc/self/status; \
             cat /proc/sys/net/ipv4/ping_group_range; \
             d=$(ls -d /sys/fs/cgroup/memory /sys/fs/cgroup/unified 2>/dev/null | head -1); \
             mkdir $d/child && echo $$ > $d/child/cgroup.procs && echo sub-cgroup-ok; \
             grep -q memory /proc/self/cgroup && grep memory /proc/self/cgroup; \
             echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null && echo raised-limit || echo limit-protected")
        .ok();
    for set in ["CapEff:", "CapBnd:", "CapPrm:"] {
        let v = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(set))
            .unwrap_or_else(|| panic!("{set} missing\n{out}"))
            .trim()
            .to_string();
        assert_eq!(v, host, "{set} differs from the host's bounding set");
    }
    assert!(
        out.stdout.contains("0\t65535"),
        "ping_group_range clamped to the mapping:\n{out}"
    );
    assert!(out.stdout.contains("sub-cgroup-ok"), "{out}");
    assert!(
        out.stdout.contains(":memory:/child"),
        "moved into its own sub-cgroup:\n{out}"
    );
    assert!(out.stdout.contains("limit-protected"), "{out}");
}

#[test]
fn a_hostile_root_cannot_break_out() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let me = std::process::id();
    let script = format!(
        "breakout init_module; breakout finit_module; breakout open_by_handle; breakout mknod_dev; \
         breakout raise_nofile; breakout settime; breakout kill {me}; breakout mount_host_proc; breakout io_uring; \
         f=$(ls -d /sys/kernel/slab/*/objects | head -1); breakout read $f; \
         echo procs $(ls -d /proc/[0-9]* | wc -l)"
    );
    let out = env.run(BUSYBOX).breakout().sh(&script).ok();
    let kv = kv_lines(&out.stdout);
    for (k, want) in [
        ("init_module", "EPERM"),
        ("finit_module", "EPERM"),
        ("open_by_handle", "EPERM"),
        ("mknod_dev", "EPERM"),
        ("raise_nofile", "EPERM"),
        ("settime", "EPERM"),
        ("kill", "ESRCH"),
        ("io_uring", "EPERM"),
    ] {
        assert_eq!(kv.get(k).map(String::as_str), Some(want), "{k}:\n{out}");
    }
    assert_ne!(
        kv.get("mount_host_proc").map(String::as_str),
        Some("ok"),
        "{out}"
    );
    assert_eq!(
        kv.get("read").map(String::as_str),
        Some("EACCES"),
        "host root's 0400 file:\n{out}"
    );
    let procs: usize = kv["procs"].parse().unwrap();
    assert!(procs <= 4, "sees processes beyond its own:\n{out}");
    // The reference: plain runc's root can read that same file (so the
    // check above is not vacuous).
    let base = env
        .run_plain_runc(BUSYBOX)
        .breakout()
        .sh("f=$(ls -d /sys/kernel/slab/*/objects | head -1); breakout read $f")
        .ok();
    assert!(base.stdout.contains("read ok"), "{base}");
}

#[test]
fn containers_cannot_see_each_others_files() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let secret = format!("secret-{}", std::process::id());
    let a = env.run(BUSYBOX).start(&["sleep", "1000"]);
    a.sh(&format!(
        "echo s > /root/{secret} && chmod 600 /root/{secret}"
    ))
    .ok();
    let b = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let out = b
        .sh(&format!(
            "find / -xdev -name '{secret}' 2>/dev/null; grep -c '{}' /proc/self/mountinfo; true",
            a.id
        ))
        .ok();
    assert!(!out.stdout.contains(&secret), "{out}");
    assert_eq!(out.stdout.trim(), "0", "B's mount table names A:\n{out}");
}

#[test]
fn host_state_is_kept_across_stop_and_start_and_freed_after_rm() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let data = syscont_data_dir();
    let c = env.run(BUSYBOX).start(&["sleep", "1000"]);
    let dir = data.join("containers").join(&c.id);
    let before = c.exec(&["cat", "/proc/self/uid_map"]).ok().stdout;
    assert!(dir.join("rootfs").exists());
    // Whether the rootfs is mounted: its device differs from its directory's
    // (the mount table itself can skip lines while other tests mount).
    let mounted = || {
        let d = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        usize::from(dir.join("rootfs").exists() && d(&dir.join("rootfs")) != d(&dir))
    };
    assert!(mounted() >= 1);
    c.docker(&["stop", "-t", "1", &c.id]).ok();
    assert!(dir.exists(), "directory kept across stop");
    assert_eq!(mounted(), 0, "mounts undone at stop");
    c.docker(&["start", &c.id]).ok();
    assert_eq!(
        c.exec(&["cat", "/proc/self/uid_map"]).ok().stdout,
        before,
        "same range after start"
    );
    c.docker(&["rm", "-f", &c.id]).ok();
    let start = Instant::now();
    while dir.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !dir.exists(),
        "directory not freed within 10 s of docker rm"
    );
    assert_eq!(mounted(), 0);
    let ranges = std::fs::read_to_string(data.join("idranges.json")).unwrap();
    assert!(!ranges.contains(&c.id), "range not released:\n{ranges}");
}

#[test]
fn a_crashed_create_leaves_nothing_that_outlives_its_container() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    // What a create killed half-way leaves: a directory with a record whose
    // bundle and rootfs no longer exist.
    let data = syscont_data_dir();
    let id = format!("crashed-{}", std::process::id());
    let dir = data.join("containers").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    let record = serde_json::json!({
        "id": id, "bundle": "/nonexistent/bundle", "engine_root": "/nonexistent/rootfs",
        "alive_paths": ["/nonexistent/upper"], "mounts": []
    });
    std::fs::write(dir.join("record.json"), record.to_string()).unwrap();
    // The next create (or the supervisor's reaper) frees it.
    env.run(BUSYBOX).cmd(&["true"]).ok();
    let start = Instant::now();
    while dir.exists() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists());
}

#[test]
fn what_cannot_work_in_a_system_container_is_refused_at_create() {
    let env = require_env!();
    if !syscont_only(env) {
        return;
    }
    let data = syscont_data_dir();
    for (i, (opts, needle)) in [
        (&["--pid", "host"][..], "--pid=host"),
        (&["--ipc", "host"][..], "--ipc=host"),
        (&["--uts", "host"][..], "--uts=host"),
        (&["--network", "host"][..], "--network=host"),
        (&["--privileged"][..], "--privileged"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("syscont-refused-{}-{i}", std::process::id());
        let mut args = vec![
            "create",
            "--name",
            &name,
            "--runtime",
            &env.runtime,
            "--label",
            "syscont-test=1",
        ];
        if !opts.contains(&"--network") {
            args.extend(["--network", "none"]);
        }
        args.extend_from_slice(opts);
        args.extend([BUSYBOX, "true"]);
        env.docker(&args).ok();
        let id = env
            .docker(&["inspect", "-f", "{{.Id}}", &name])
            .ok()
            .stdout
            .trim()
            .to_string();
        let out = env.docker(&["start", "-a", &name]);
        env.docker(&["rm", "-f", &name]).ok();
        assert_ne!(out.status, 0, "{opts:?} was accepted:\n{out}");
        assert!(
            out.stderr.contains(needle),
            "{opts:?}: no clear reason:\n{out}"
        );
        // Nothing is left behind: no directory, no mount, no id range.
        assert!(
            !data.join("containers").join(&id).exists(),
            "{opts:?} left a directory"
        );
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mi.contains(&id), "{opts:?} left a mount");
        let ranges = std::fs::read_to_string(data.join("idranges.json")).unwrap_or_default();
        assert!(!ranges.contains(&id), "{opts:?} took an id range");
    }
    assert!(Path::new(&data).exists());
}
