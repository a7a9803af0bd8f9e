//! What real programs print inside a container run with
//! `--memory 256m --cpuset-cpus 0` under the runtime under test.

mod common;

use common::*;

/// `Mem:` row of `free` (procps or busybox): the total column.
fn free_total(out: &str) -> Option<u64> {
    let l = out.lines().find(|l| l.starts_with("Mem:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn free_procps_shows_the_memory_limit() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .sh("free; echo ---; free -m")
        .ok();
    let (kib, mib) = out.stdout.split_once("---").expect("two outputs");
    assert_eq!(
        free_total(kib),
        Some(MEM_LIMIT_KB),
        "procps free (KiB):\n{out}"
    );
    assert_eq!(free_total(mib), Some(256), "procps free -m:\n{out}");
}

#[test]
fn free_busybox_shows_the_memory_limit() {
    let env = require_env!();
    let out = env.run(BUSYBOX).limited().cmd(&["free"]).ok();
    assert_eq!(
        free_total(&out.stdout),
        Some(MEM_LIMIT_KB),
        "busybox free:\n{out}"
    );
}

#[test]
fn uptime_is_the_containers_own() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .sh("cat /proc/uptime; uptime")
        .ok();
    let host = host_uptime();
    let up = uptime_secs(&out.stdout).expect("uptime figure");
    assert!(
        (0.0..30.0).contains(&up),
        "container uptime {up} s is not small (host: {host} s):\n{out}"
    );
    assert!(
        host > up + 30.0,
        "host uptime {host} s should exceed the container's {up} s:\n{out}"
    );
    let line = out.stdout.lines().nth(1).unwrap_or_default();
    assert!(
        line.contains(" up 0 min,"),
        "procps uptime should say 'up 0 min':\n{out}"
    );
    let bb = env.run(BUSYBOX).limited().cmd(&["uptime"]).ok();
    assert!(
        bb.stdout.contains(" up 0 min,"),
        "busybox uptime should say 'up 0 min':\n{bb}"
    );
}

#[test]
fn cpu_count_tools_see_one_cpu() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .sh("getconf _NPROCESSORS_ONLN; nproc; cat /sys/devices/system/cpu/online")
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["1", "1", "0"],
        "getconf _NPROCESSORS_ONLN, nproc, cpu/online:\n{out}"
    );
}

#[test]
fn lscpu_reports_one_cpu_online() {
    let env = require_env!();
    let out = env.run(BOOKWORM).limited().cmd(&["lscpu"]).ok();
    let field = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("lscpu has no {k}:\n{out}"))
    };
    assert_eq!(field("CPU(s):"), "1", "lscpu:\n{out}");
    assert_eq!(field("On-line CPU(s) list:"), "0", "lscpu:\n{out}");
}

#[test]
fn top_shows_256_mib_and_one_cpu() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .opt("-e")
        .opt("COLUMNS=200")
        .cmd(&["top", "-b", "-1", "-n", "2", "-d", "1"])
        .ok();
    let frames: Vec<&str> = out
        .stdout
        .split("top - ")
        .filter(|f| !f.trim().is_empty())
        .collect();
    assert_eq!(frames.len(), 2, "two top frames expected:\n{out}");
    for f in frames {
        let mem = f
            .lines()
            .find(|l| l.starts_with("MiB Mem"))
            .unwrap_or_else(|| panic!("no MiB Mem line:\n{f}"));
        let total = mem
            .split(':')
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        assert_eq!(total, "256.0", "top MiB Mem total:\n{f}");
        let cpus = f.matches("%Cpu").count();
        assert_eq!(cpus, 1, "top should list exactly one CPU (%Cpu0):\n{f}");
        assert!(f.contains("%Cpu0"), "top's CPU line should be %Cpu0:\n{f}");
    }
}

#[test]
fn python_sees_one_cpu_and_256_mib() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .fixtures()
        .cmd(&["python3", "/fixtures/sysinfo.py"])
        .ok();
    let kv = kv_lines(&out.stdout);
    assert_eq!(kv["cpu_count"], "1", "os.cpu_count():\n{out}");
    assert_eq!(
        kv["phys_bytes"],
        MEM_LIMIT_BYTES.to_string(),
        "SC_PHYS_PAGES * SC_PAGE_SIZE:\n{out}"
    );
    let avphys: u64 = kv["avphys_bytes"].parse().expect("avphys");
    assert!(
        avphys > 0 && avphys <= MEM_LIMIT_BYTES,
        "SC_AVPHYS_PAGES beyond the limit:\n{out}"
    );
}

#[test]
fn sysinfo_is_container_relative() {
    let env = require_env!();
    let out = env
        .run(BOOKWORM)
        .limited()
        .fixtures()
        .cmd(&["python3", "/fixtures/sysinfo.py"])
        .ok();
    let kv = kv_lines(&out.stdout);
    let num = |k: &str| -> u64 {
        kv[k]
            .parse()
            .unwrap_or_else(|_| panic!("{k} not a number:\n{out}"))
    };
    assert_eq!(
        num("totalram_bytes"),
        MEM_LIMIT_BYTES,
        "sysinfo totalram*mem_unit:\n{out}"
    );
    assert!(
        num("freeram_bytes") <= MEM_LIMIT_BYTES,
        "freeram beyond totalram:\n{out}"
    );
    assert!(num("freeram_bytes") > 0, "freeram is zero:\n{out}");
    assert!(num("uptime") < 30, "sysinfo uptime not small:\n{out}");
    assert!(
        (1..=10).contains(&num("procs")),
        "sysinfo procs should count the container's tasks:\n{out}"
    );
    assert!(
        num("freeswap_bytes") <= num("totalswap_bytes"),
        "freeswap > totalswap:\n{out}"
    );
}

#[test]
fn proc_meminfo_memtotal_is_the_limit() {
    let env = require_env!();
    let out = env
        .run(BUSYBOX)
        .limited()
        .cmd(&["cat", "/proc/meminfo"])
        .ok();
    let kb = |k: &str| meminfo_kb(&out.stdout, k).unwrap_or_else(|| panic!("no {k}:\n{out}"));
    assert_eq!(kb("MemTotal"), MEM_LIMIT_KB, "{out}");
    assert!(
        kb("MemFree") <= MEM_LIMIT_KB,
        "MemFree beyond MemTotal:\n{out}"
    );
    assert!(
        kb("MemAvailable") <= MEM_LIMIT_KB,
        "MemAvailable beyond MemTotal:\n{out}"
    );
    assert!(kb("MemFree") > 0, "MemFree zero:\n{out}");
    assert!(
        kb("SwapFree") <= kb("SwapTotal"),
        "SwapFree > SwapTotal:\n{out}"
    );
}

#[test]
fn proc_cpuinfo_and_stat_list_one_cpu() {
    let env = require_env!();
    let out = env
        .run(BUSYBOX)
        .limited()
        .sh("cat /proc/cpuinfo; echo ---; cat /proc/stat")
        .ok();
    let (cpuinfo, stat) = out.stdout.split_once("---").expect("two outputs");
    let processors: Vec<&str> = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .collect();
    assert_eq!(processors.len(), 1, "/proc/cpuinfo processors:\n{cpuinfo}");
    assert_eq!(
        processors[0].split(':').nth(1).map(str::trim),
        Some("0"),
        "{cpuinfo}"
    );
    let cpu_lines: Vec<&str> = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(
        cpu_lines.len(),
        1,
        "/proc/stat should have exactly one cpuN line:\n{stat}"
    );
    assert!(cpu_lines[0].starts_with("cpu0 "), "{stat}");
    assert!(
        stat.lines().any(|l| l.starts_with("cpu ")),
        "no aggregate cpu line:\n{stat}"
    );
    for key in ["btime ", "processes ", "procs_running ", "procs_blocked "] {
        assert!(
            stat.lines().any(|l| l.starts_with(key)),
            "/proc/stat lacks {key}:\n{stat}"
        );
    }
    let running: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("procs_running "))
        .and_then(|v| v.trim().parse().ok())
        .expect("procs_running");
    assert!(
        (1..=10).contains(&running),
        "procs_running should be the container's:\n{stat}"
    );
}

#[test]
fn proc_loadavg_is_well_formed_and_counts_the_containers_tasks() {
    let env = require_env!();
    let out = env
        .run(BUSYBOX)
        .limited()
        .cmd(&["cat", "/proc/loadavg"])
        .ok();
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(f.len(), 5, "loadavg fields:\n{out}");
    for l in &f[..3] {
        let (a, b) = l
            .split_once('.')
            .unwrap_or_else(|| panic!("load {l} not N.NN:\n{out}"));
        assert!(
            a.parse::<u64>().is_ok() && b.len() == 2 && b.parse::<u64>().is_ok(),
            "load {l}:\n{out}"
        );
    }
    let (run, total) = f[3].split_once('/').expect("running/total");
    let (run, total): (u64, u64) = (run.parse().expect("running"), total.parse().expect("total"));
    assert!(run >= 1 && run <= total, "running/total {}:\n{out}", f[3]);
    assert!(
        total <= 10,
        "loadavg total tasks should be the container's, not the host's:\n{out}"
    );
    assert!(f[4].parse::<u64>().is_ok(), "last pid:\n{out}");
}

#[test]
fn proc_swaps_and_diskstats_are_well_formed() {
    let env = require_env!();
    let out = env
        .run(BUSYBOX)
        .limited()
        .sh("cat /proc/swaps; echo ---; cat /proc/diskstats")
        .ok();
    let (swaps, disk) = out.stdout.split_once("---\n").expect("two outputs");
    let mut sl = swaps.lines();
    let header: Vec<&str> = sl.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(
        header,
        ["Filename", "Type", "Size", "Used", "Priority"],
        "/proc/swaps header:\n{swaps}"
    );
    for l in sl {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 5, "/proc/swaps row {l:?}");
        assert!(
            f[2..].iter().all(|x| x.parse::<i64>().is_ok()),
            "/proc/swaps row {l:?}"
        );
    }
    for l in disk.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert!(
            f.len() >= 14,
            "/proc/diskstats row has {} fields: {l:?}",
            f.len()
        );
        assert!(
            f[0].parse::<u64>().is_ok() && f[1].parse::<u64>().is_ok(),
            "major/minor in {l:?}"
        );
        assert!(
            f[3..].iter().all(|x| x.parse::<u64>().is_ok()),
            "counters in {l:?}"
        );
    }
}

#[test]
fn container_without_limits_sees_the_host() {
    let env = require_env!();
    let out = env
        .run(BUSYBOX)
        .sh("cat /proc/meminfo; echo ---; grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online")
        .ok();
    let (mem, cpus) = out.stdout.split_once("---").expect("two outputs");
    assert_eq!(
        meminfo_kb(mem, "MemTotal"),
        Some(host_meminfo_kb("MemTotal")),
        "{out}"
    );
    let mut l = cpus.split_whitespace();
    assert_eq!(
        l.next().and_then(|n| n.parse().ok()),
        Some(host_cpu_count()),
        "{out}"
    );
    let host_online =
        std::fs::read_to_string("/sys/devices/system/cpu/online").expect("host online");
    assert_eq!(l.next(), Some(host_online.trim()), "{out}");
}
