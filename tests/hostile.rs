//! A hostile process in the container gets what the kernel would give
//! (EFAULT, ENAMETOOLONG, …), cannot crash or stall the supervisor, and never
//! delays another container's calls. Uses tests/hostile/hostile.c.

mod common;

use common::*;
use std::time::Duration;

const BAD_INPUT: &str = "hostile efault; hostile unterminated; hostile longpath";

#[test]
fn bad_pointers_and_strings_get_the_kernels_errno() {
    let env = require_env!();
    let ours = env.run(BUSYBOX).limited().hostile().sh(BAD_INPUT).ok();
    let base = env
        .run_baseline(BUSYBOX)
        .limited()
        .hostile()
        .sh(BAD_INPUT)
        .ok();
    // Everything but the one emulated success must match the reference (no supervisor) exactly.
    let strip = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("meminfo_4002 "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let diff = kv_diff(&strip(&ours.stdout), &strip(&base.stdout));
    assert!(
        diff.is_empty(),
        "differs from the reference:\n  {}\n{ours}\n--- reference ---\n{base}",
        diff.join("\n  ")
    );
    let kv = kv_lines(&base.stdout);
    for (case, want) in [
        ("open_ptr1", "EFAULT"),
        ("openat2_how_ptr1", "EFAULT"),
        ("sysinfo_ptr1", "EFAULT"),
        ("sysinfo_readonly", "EFAULT"),
        ("sysinfo_straddle", "EFAULT"),
        ("meminfo_unterminated", "EFAULT"),
        ("meminfo_unterminated_openat2", "EFAULT"),
        ("page_of_slashes", "ENAMETOOLONG"),
        ("path_5000", "ENAMETOOLONG"),
        ("meminfo_4108", "ENAMETOOLONG"),
    ] {
        assert_eq!(
            kv.get(case).map(String::as_str),
            Some(want),
            "{case} under the reference:\n{base}"
        );
    }
    // A 4002-byte spelling of /proc/meminfo is still /proc/meminfo.
    let ours_kv = kv_lines(&ours.stdout);
    assert_eq!(
        ours_kv.get("meminfo_4002").map(String::as_str),
        Some(format!("MemTotal={MEM_LIMIT_KB}").as_str()),
        "{ours}"
    );
    assert_supervisor_serving(env);
}

#[test]
fn path_rewritten_while_the_call_is_trapped() {
    let env = require_env!();
    let out = env
        .run(BUSYBOX)
        .limited()
        .hostile()
        .timeout(Duration::from_secs(60))
        .cmd(&["hostile", "race", "4"])
        .ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("race "))
        .unwrap_or_else(|| panic!("{out}"));
    let field = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| {
                f.strip_prefix(&format!("{k}="))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or_else(|| panic!("no {k} in {line}"))
    };
    assert!(
        field("opens") >= 100,
        "the racing opener made too few calls in 4 s: {line}"
    );
    assert_eq!(field("other"), 0, "an open returned an empty file: {line}");
    assert_supervisor_serving(env);
}

#[test]
fn callers_killed_or_stopped_mid_call() {
    let env = require_env!();
    let script = r#"
        for i in 1 2 3 4 5 6; do
            hostile flood 20 >/dev/null & p=$!
            sleep 0.3; kill -9 $p; wait $p
            echo killed=$?
        done
        hostile flood 3 > /tmp/flood.out & p=$!
        sleep 0.3; kill -STOP $p; sleep 1; kill -CONT $p; wait $p
        echo stopcont=$?
        grep opens= /tmp/flood.out
        grep MemTotal /proc/meminfo
    "#;
    let out = env
        .run(BUSYBOX)
        .limited()
        .hostile()
        .timeout(Duration::from_secs(90))
        .sh(script)
        .ok();
    assert_eq!(
        out.stdout.matches("killed=137").count(),
        6,
        "each flood should die by SIGKILL:\n{out}"
    );
    assert!(
        out.stdout.contains("stopcont=0"),
        "stopped and continued flood must finish cleanly:\n{out}"
    );
    assert!(
        out.stdout.contains(" bad=0"),
        "stopped and continued flood saw bad reads:\n{out}"
    );
    let last = out.stdout.lines().last().unwrap_or_default();
    assert_eq!(meminfo_kb(last, "MemTotal"), Some(MEM_LIMIT_KB), "{out}");
    assert_supervisor_serving(env);
}

#[test]
fn container_killed_mid_flood() {
    let env = require_env!();
    let c = env.run(BUSYBOX).limited().hostile().start(&[
        "sh",
        "-c",
        "hostile flood 60 & hostile flood 60 & wait",
    ]);
    c.wait_log("flood started", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    c.docker(&["kill", &c.id]).ok();
    drop(c);
    assert_supervisor_serving(env);
}

#[test]
fn flood_in_one_container_does_not_starve_another() {
    let env = require_env!();
    let a = env.run(BUSYBOX).limited().hostile().start(&[
        "sh",
        "-c",
        "hostile flood 40 & hostile flood 40 & hostile flood 40 & wait",
    ]);
    a.wait_log("flood started", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let b = env
        .run(BUSYBOX)
        .limited()
        .hostile()
        .cmd(&["hostile", "timed", "200", "/proc/uptime"])
        .ok();
    let line = b
        .stdout
        .lines()
        .find(|l| l.starts_with("timed "))
        .unwrap_or_else(|| panic!("{b}"));
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
    };
    assert_eq!(
        field("bad"),
        "0",
        "B's opens failed under A's flood: {line}"
    );
    let ms: f64 = field("ms").parse().expect("ms");
    assert!(
        ms < 10_000.0,
        "B needed {ms} ms for 200 opens while A floods: starved ({line})"
    );
    let up: f64 = line
        .split("first_line=")
        .nth(1)
        .and_then(uptime_secs)
        .expect("uptime in B");
    assert!(up < 30.0, "B should read its own uptime, got {up}: {line}");
    drop(a);
    assert_supervisor_serving(env);
}

#[test]
fn concurrent_containers_each_get_only_their_own_figures() {
    let env = require_env!();
    let run = |mem: &str, kb: u64| {
        let r = env
            .run(BUSYBOX)
            .opt("--memory")
            .opt(mem)
            .opt("--cpuset-cpus")
            .opt(CPUSET)
            .hostile();
        move || r.cmd(&["hostile", "memcheck", "4", &kb.to_string()]).ok()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(run("256m", MEM_LIMIT_KB));
        let b = s.spawn(run("128m", MEM_LIMIT_KB / 2));
        (a.join().expect("A"), b.join().expect("B"))
    });
    for (name, out) in [("A (256m)", &a), ("B (128m)", &b)] {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("memcheck "))
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            line.contains(" wrong=0 ") && line.ends_with(" bad=0"),
            "{name} saw foreign or failed reads: {line}"
        );
        let reads: u64 = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("reads="))
            .and_then(|v| v.parse().ok())
            .expect("reads");
        assert!(reads >= 100, "{name} made too few reads: {line}");
    }
}

/// The filter and the emulation cover every ABI of the profile's
/// architectures: i386 (`int $0x80`, including an `_llseek` rewind) and x32
/// calls from a 64-bit process.
/// Where the kernel lacks an ABI (x32 on most kernels), the caller must get
/// the kernel's ENOSYS, as under plain runc, not an emulated file.
#[test]
fn i386_and_x32_calls_are_emulated_or_refused_like_the_kernel() {
    let env = require_env!();
    let ours = env
        .run(BUSYBOX)
        .limited()
        .hostile()
        .cmd(&["hostile", "abi"])
        .ok();
    let base = env
        .run_baseline(BUSYBOX)
        .limited()
        .hostile()
        .cmd(&["hostile", "abi"])
        .ok();
    let (ours_kv, base_kv) = (kv_lines(&ours.stdout), kv_lines(&base.stdout));
    let emulated = format!("MemTotal={MEM_LIMIT_KB}");
    for case in ["i386_open", "i386_openat", "x32_open", "x32_openat"] {
        let b = base_kv
            .get(case)
            .unwrap_or_else(|| panic!("no {case} under runc:\n{base}"));
        let want = if b.starts_with("MemTotal=") {
            emulated.as_str()
        } else {
            b.as_str()
        };
        assert_eq!(
            ours_kv.get(case).map(String::as_str),
            Some(want),
            "{case} (runc: {b}):\n{ours}"
        );
    }
    assert_eq!(
        ours_kv.get("i386_sysinfo").map(String::as_str),
        Some(format!("totalram_bytes={MEM_LIMIT_BYTES}").as_str()),
        "i386 sysinfo:\n{ours}"
    );
    // A rewind through i386 `_llseek` re-reads fresh values, as procfs.
    assert_eq!(
        base_kv.get("i386_rewind").map(String::as_str),
        Some("fresh"),
        "under runc:\n{base}"
    );
    assert_eq!(
        ours_kv.get("i386_rewind").map(String::as_str),
        Some("fresh"),
        "i386 rewind of an emulated file:\n{ours}"
    );
}
