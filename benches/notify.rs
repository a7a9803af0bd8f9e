//! End-to-end cost of `syscont-supervisor`, measured in one run beside the
//! C reference probe (`../shared/bench/seccomp-probe`) and LXCFS, with
//! interleaved rounds (every configuration once per round, so a burst of
//! background load hits all of them alike). Reports medians and
//! `[min-max]` over the rounds, and ratios to the same-run references;
//! it never asserts on time.
//!
//! Run it through `benches/run.sh` (root: seccomp filters, lxcfs, cgroups),
//! which builds the supervisor and the probe and passes their paths:
//!
//! ```text
//! cargo bench --bench notify -- --probe P --supervisor S [--rounds 5]
//!     [--iters 200000] [--emu-iters 50000] [--lxcfs-iters 20000]
//!     [--idle-secs 10] [--fds 200,1000] [--scratch DIR] [--out FILE]
//!     [--skip trap,lxcfs,pinned,idle,mem] [--only SUBSTR,...] [--busy-fds 200]
//! ```
//!
//! What it measures:
//! 1. Trapped-and-continued `openat("/etc/hostname")+close` through our
//!    supervisor (target and supervisor unpinned) vs the probe's
//!    configurations; per round, ours over the probe's best.
//! 2. Emulated open+read+close of `/proc/meminfo` (target in a child memory
//!    cgroup limited to 512 MiB) vs the probe's emulation and LXCFS.
//! 3. Supervisor CPU while a registered target makes no trapped call.
//! 4. Supervisor RSS per registered listener fd.
//!
//! Every target is a forked child of this process: it times the native
//! operation, installs a libseccomp filter with `SCMP_ACT_NOTIFY` on
//! open/openat/openat2, sends the listener to the agent socket as runc does
//! (one `ContainerProcessState` JSON with the fd as `SCM_RIGHTS`), warms
//! up, then times the trapped operation. The supervisor's CPU time over the
//! timed window is read from `/proc/<pid>/task/*/schedstat` (ns) and
//! `/proc/<pid>/stat` (utime+stime ticks) by this process, which is never
//! trapped.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fmt::Write as _;
use std::io::{IoSlice, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libseccomp::{ScmpAction, ScmpFilterContext, ScmpSyscall};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

const WARM: u64 = 2000;
const MEMINFO: &CStr = c"/proc/meminfo";
const HOSTNAME: &CStr = c"/etc/hostname";
const META: &str = r#"{"v":1,"orig":{"open":{"action":"allow"},"openat":{"action":"allow"},"openat2":{"action":"allow"}}}"#;
const CG_LIMIT: u64 = 512 << 20;

// ------------------------------------------------------------------ options

#[derive(Debug, Clone)]
struct Opts {
    probe: PathBuf,
    supervisor: PathBuf,
    rounds: usize,
    iters: u64,
    emu_iters: u64,
    lxcfs_iters: u64,
    idle_secs: u64,
    fds: Vec<usize>,
    scratch: PathBuf,
    out: Option<PathBuf>,
    skip: Vec<String>,
    /// Idle fds registered beside the target in one open config (0: off).
    busy_fds: usize,
    /// Run only the trap configs whose name contains one of these.
    only: Vec<String>,
}

impl Opts {
    fn parse() -> Opts {
        let mut o = Opts {
            probe: PathBuf::new(),
            supervisor: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/release/syscont-supervisor"),
            rounds: 5,
            iters: 200_000,
            emu_iters: 50_000,
            lxcfs_iters: 20_000,
            idle_secs: 10,
            fds: vec![200, 1000],
            scratch: PathBuf::from("/tmp/syscont-bench"),
            out: None,
            skip: Vec::new(),
            only: Vec::new(),
            busy_fds: 200,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            let v = args.get(i + 1).cloned().unwrap_or_default();
            let num = |s: &str| -> u64 {
                s.parse()
                    .unwrap_or_else(|_| fail(&format!("bad number {s:?} for {}", args[i])))
            };
            match args[i].as_str() {
                "--probe" => o.probe = v.into(),
                "--supervisor" => o.supervisor = v.into(),
                "--rounds" => o.rounds = num(&v) as usize,
                "--iters" => o.iters = num(&v),
                "--emu-iters" => o.emu_iters = num(&v),
                "--lxcfs-iters" => o.lxcfs_iters = num(&v),
                "--idle-secs" => o.idle_secs = num(&v),
                "--fds" => o.fds = v.split(',').map(|s| num(s) as usize).collect(),
                "--scratch" => o.scratch = v.into(),
                "--out" => o.out = Some(v.into()),
                "--busy-fds" => o.busy_fds = num(&v) as usize,
                "--only" => o.only = v.split(',').map(str::to_string).collect(),
                "--skip" => o.skip = v.split(',').map(str::to_string).collect(),
                // cargo bench passes --bench; anything else unknown is ignored.
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        if o.probe.as_os_str().is_empty() || o.rounds == 0 {
            fail("usage: notify --probe PATH [--supervisor PATH] [--rounds N] ... (see benches/run.sh)");
        }
        o
    }

    fn skips(&self, what: &str) -> bool {
        self.skip.iter().any(|s| s == what)
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("notify bench: {msg}");
    std::process::exit(2)
}

// ------------------------------------------------------------ small helpers

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// utime+stime of a whole process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15.
    let get = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(14) + get(15)
}

/// Time on CPU of each thread of a process, in ns (schedstat), by tid.
fn cpu_ns(pid: i32) -> BTreeMap<String, u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            let ns = s.split_whitespace().next()?.parse::<u64>().ok()?;
            Some((t.file_name().to_string_lossy().into_owned(), ns))
        })
        .collect()
}

/// CPU ns spent between two [`cpu_ns`] samples by the threads present in
/// both (threads that start or end in between are left out).
fn cpu_ns_delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> u64 {
    b.iter()
        .filter_map(|(tid, v1)| a.get(tid).map(|v0| v1.saturating_sub(*v0)))
        .sum()
}

fn status_kib(pid: i32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn count_dir(p: &str) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

fn proc_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn pin_self(cpu: Option<usize>) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET stays in bounds.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => (0..libc::CPU_SETSIZE as usize).for_each(|c| libc::CPU_SET(c, &mut set)),
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pin (or unpin, `None`) every thread of process `pid`.
fn pin_process(pid: i32, cpu: Option<usize>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return;
    };
    for t in dir.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: as in pin_self.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            match cpu {
                Some(c) => libc::CPU_SET(c, &mut set),
                None => (0..libc::CPU_SETSIZE as usize).for_each(|c| libc::CPU_SET(c, &mut set)),
            }
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// `fork()`; the child closes `close_in_child` (the parent's end of its
/// control socket), runs `f` and exits without unwinding into our state.
fn fork_child(close_in_child: RawFd, f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: this process is single-threaded (no threads are ever started),
    // so the child may allocate and run arbitrary code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail("fork failed");
    }
    if pid == 0 {
        // SAFETY: closing our copy of the parent's end; the parent keeps its own.
        unsafe { libc::close(close_in_child) };
        let code = f();
        // SAFETY: leave without running the parent's destructors/atexit.
        unsafe { libc::_exit(code) };
    }
    pid
}

fn reap(pid: i32) {
    let mut st = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
}

fn kill_and_reap(pid: i32) {
    // SAFETY: `pid` is a child we forked and have not reaped yet.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid);
}

// ----------------------------------------------------------- target process

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// openat("/etc/hostname") + close
    Open,
    /// open+read+close of /proc/meminfo
    Meminfo,
}

thread_local! {
    static RBUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 16384]);
}

/// open + one read(16 KiB) + close, as the probe's `orc`.
fn orc(path: &CStr) -> usize {
    RBUF.with(|b| {
        let mut b = b.borrow_mut();
        // SAFETY: valid C string; the buffer is valid for its length.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                libc::_exit(10);
            }
            let n = libc::read(fd, b.as_mut_ptr().cast(), b.len());
            libc::close(fd);
            if n < 0 {
                libc::_exit(11);
            }
            n as usize
        }
    })
}

fn do_op(op: Op) {
    match op {
        Op::Open => {
            // SAFETY: valid C string.
            let fd = unsafe { libc::openat(libc::AT_FDCWD, HOSTNAME.as_ptr(), libc::O_RDONLY) };
            if fd < 0 {
                // SAFETY: child exit.
                unsafe { libc::_exit(12) };
            }
            // SAFETY: closing the fd we opened.
            unsafe { libc::close(fd) };
        }
        Op::Meminfo => {
            orc(MEMINFO);
        }
    }
}

fn time_ns(n: u64, mut f: impl FnMut()) -> f64 {
    for _ in 0..WARM {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn first_line_of(path: &CStr) -> String {
    let n = orc(path);
    RBUF.with(|b| {
        let b = b.borrow();
        String::from_utf8_lossy(b[..n].split(|&c| c == b'\n').next().unwrap_or(b""))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn enter_cgroup(cg: &Path) {
    if std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string()).is_err() {
        // SAFETY: child exit.
        unsafe { libc::_exit(13) };
    }
}

/// Install the NOTIFY filter for open/openat/openat2; returns the listener.
fn install_filter() -> OwnedFd {
    let mut ctx = ScmpFilterContext::new_filter(ScmpAction::Allow).expect("seccomp_init");
    for name in ["open", "openat", "openat2"] {
        let sys = ScmpSyscall::from_name(name).expect("syscall name");
        ctx.add_rule(ScmpAction::Notify, sys).expect("add_rule");
    }
    ctx.load().expect("seccomp load");
    let fd: RawFd = ctx.get_notify_fd().expect("notify fd");
    // SAFETY: libseccomp hands us the listener it created; we own it now.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Send the listener to the agent socket as runc does.
fn register(sock: &Path, listener: &OwnedFd, id: &str, creating: bool, init_pid: i32) -> bool {
    let me = std::process::id() as i32;
    let doc = serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "fds": ["seccompFd"],
        "pid": me,
        "metadata": META,
        "state": {
            "ociVersion": "1.0.2-dev",
            "id": id,
            "status": if creating { "creating" } else { "running" },
            "pid": init_pid,
            "bundle": "/tmp/syscont-bench/bundle",
        }
    })
    .to_string();
    let Ok(s) = UnixStream::connect(sock) else {
        return false;
    };
    let fds = [listener.as_raw_fd()];
    let iov = [IoSlice::new(doc.as_bytes())];
    let sent = sendmsg::<()>(
        s.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    );
    // runc keeps the connection open; the supervisor must not need EOF.
    // We keep it until we exit (dropped with the process).
    std::mem::forget(s);
    sent == Ok(doc.len())
}

/// Result line a target sends back.
#[derive(Debug, Default, Clone)]
struct TargetResult {
    native: f64,
    trapped: f64,
    tgt_cpu: f64,
    first_line: String,
}

impl TargetResult {
    fn encode(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.native, self.trapped, self.tgt_cpu, self.first_line
        )
    }
    fn decode(s: &str) -> Option<TargetResult> {
        let mut it = s.trim_end().splitn(4, ' ');
        Some(TargetResult {
            native: it.next()?.parse().ok()?,
            trapped: it.next()?.parse().ok()?,
            tgt_cpu: it.next()?.parse().ok()?,
            first_line: it.next().unwrap_or("").to_string(),
        })
    }
}

/// Read up to and including a newline (or EOF).
fn read_line(s: &mut UnixStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while s.read_exact(&mut b).is_ok() {
        out.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_byte(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).is_ok()
}

struct TrapSpec<'a> {
    op: Op,
    iters: u64,
    agent: &'a Path,
    cgroup: Option<&'a Path>,
    id: String,
    /// Pin the target (and, from the parent, the supervisor) to this CPU.
    pin: Option<usize>,
}

/// Child side of a trapped run.
fn trap_target(spec: &TrapSpec<'_>, mut ctl: UnixStream) -> i32 {
    if let Some(cg) = spec.cgroup {
        enter_cgroup(cg);
    }
    pin_self(spec.pin);
    let mut r = TargetResult {
        native: time_ns(spec.iters, || do_op(spec.op)),
        ..Default::default()
    };
    let native_line = first_line_of(MEMINFO);
    let listener = install_filter();
    let me = std::process::id() as i32;
    if !register(spec.agent, &listener, &spec.id, true, me) {
        return 20;
    }
    drop(listener);
    for _ in 0..WARM {
        do_op(spec.op);
    }
    r.first_line = if spec.op == Op::Meminfo {
        format!("{} (native: {native_line})", first_line_of(MEMINFO))
    } else {
        String::new()
    };
    // Ready: the parent samples the supervisor's CPU, then says go.
    if ctl.write_all(b"R").is_err() || !read_byte(&mut ctl) {
        return 21;
    }
    let c0 = proc_cpu_ns();
    let t = Instant::now();
    for _ in 0..spec.iters {
        do_op(spec.op);
    }
    r.trapped = t.elapsed().as_nanos() as f64 / spec.iters as f64;
    r.tgt_cpu = (proc_cpu_ns() - c0) as f64 / spec.iters as f64;
    if ctl.write_all(r.encode().as_bytes()).is_err() {
        return 22;
    }
    // Stay (and keep the container's worker alive) until the parent has
    // sampled the supervisor's threads.
    read_byte(&mut ctl);
    0
}

#[derive(Debug, Default, Clone)]
struct Sample {
    native: f64,
    trapped: f64,
    ratio: f64,
    sup_cpu: f64,
    sup_ticks: u64,
    tgt_cpu: f64,
    note: String,
}

/// Parent side: run one trapped target against our supervisor.
fn trap_run(spec: &TrapSpec<'_>, sup_pid: i32) -> Option<Sample> {
    let (parent, child) = UnixStream::pair().ok()?;
    let pid = fork_child(parent.as_raw_fd(), || {
        trap_target(spec, child.try_clone().expect("socket"))
    });
    drop(child);
    let mut parent = parent;
    let ok = read_byte(&mut parent);
    if !ok {
        reap(pid);
        eprintln!("  target failed before the timed loop");
        return None;
    }
    if spec.pin.is_some() {
        pin_process(sup_pid, spec.pin);
    }
    let (ns0, tk0) = (cpu_ns(sup_pid), cpu_ticks(sup_pid));
    parent.write_all(b"G").ok()?;
    let line = read_line(&mut parent);
    let (ns1, tk1) = (cpu_ns(sup_pid), cpu_ticks(sup_pid));
    drop(parent);
    if spec.pin.is_some() {
        pin_process(sup_pid, None);
    }
    reap(pid);
    let r = TargetResult::decode(&line)?;
    Some(Sample {
        native: r.native,
        trapped: r.trapped,
        ratio: r.trapped / r.native,
        sup_cpu: cpu_ns_delta(&ns0, &ns1) as f64 / spec.iters as f64,
        sup_ticks: tk1.saturating_sub(tk0),
        tgt_cpu: r.tgt_cpu,
        note: r.first_line,
    })
}

/// A reader of a file that is not trapped (LXCFS): native, then the file.
fn file_run(path: &Path, iters: u64, cgroup: Option<&Path>) -> Option<Sample> {
    let (mut parent, child) = UnixStream::pair().ok()?;
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let pid = fork_child(parent.as_raw_fd(), || {
        let mut ctl = child;
        if let Some(cg) = cgroup {
            enter_cgroup(cg);
        }
        let native = time_ns(iters, || {
            orc(MEMINFO);
        });
        let c0 = proc_cpu_ns();
        let file = time_ns(iters, || {
            orc(&cpath);
        });
        let r = TargetResult {
            native,
            trapped: file,
            tgt_cpu: (proc_cpu_ns() - c0) as f64 / (iters + WARM) as f64,
            first_line: first_line_of(&cpath),
        };
        if ctl.write_all(r.encode().as_bytes()).is_err() {
            return 22;
        }
        0
    });
    let mut line = String::new();
    let _ = parent.read_to_string(&mut line);
    reap(pid);
    let r = TargetResult::decode(&line)?;
    Some(Sample {
        native: r.native,
        trapped: r.trapped,
        ratio: r.trapped / r.native,
        tgt_cpu: r.tgt_cpu,
        note: r.first_line,
        ..Default::default()
    })
}

/// One run of the C probe: `seccomp-probe trap OP -w W -p P -n N -r 1`.
fn probe_run(
    o: &Opts,
    op: &str,
    wait: &str,
    pin: &str,
    n: u64,
    cg: Option<&Path>,
) -> Option<Sample> {
    let n = n.to_string();
    let args = ["trap", op, "-w", wait, "-p", pin, "-n", &n, "-r", "1"];
    let mut cmd = match cg {
        Some(cg) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!(
                    "echo $$ > {}/cgroup.procs && exec \"$@\"",
                    cg.display()
                ))
                .arg("sh")
                .arg(&o.probe);
            c
        }
        None => Command::new(&o.probe),
    };
    let out = cmd.args(args).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last()?;
    let mut m = BTreeMap::new();
    for tok in line.split_whitespace() {
        if let Some((k, v)) = tok.split_once('=') {
            if let Some(v) = v.split('[').next().and_then(|v| v.parse::<f64>().ok()) {
                m.insert(k.to_string(), v);
            }
        }
    }
    Some(Sample {
        native: *m.get("native")?,
        trapped: *m.get("trapped")?,
        ratio: *m.get("ratio")?,
        sup_cpu: *m.get("sup_cpu")?,
        tgt_cpu: *m.get("tgt_cpu")?,
        ..Default::default()
    })
}

// --------------------------------------------------------------- resources

/// What an interrupted run must still clean up (read by the signal handler).
static SUP_PID: AtomicI32 = AtomicI32::new(0);
static LXCFS_PID: AtomicI32 = AtomicI32::new(0);
static CLEANUP_PATHS: OnceLock<(std::ffi::CString, std::ffi::CString)> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls: kill, umount2, rmdir, _exit.
    // SAFETY: plain syscalls on pids we started and paths we created.
    unsafe {
        for p in [&SUP_PID, &LXCFS_PID] {
            let pid = p.load(Relaxed);
            if pid > 0 {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if let Some((mnt, cg)) = CLEANUP_PATHS.get() {
            libc::usleep(300_000);
            libc::umount2(mnt.as_ptr(), libc::MNT_DETACH);
            libc::rmdir(cg.as_ptr());
        }
        libc::_exit(130);
    }
}

fn install_signal_cleanup(scratch: &Path, cg: Option<&Path>) {
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default();
    let _ = CLEANUP_PATHS.set((c(&scratch.join("lxcfs")), c(cg.unwrap_or(Path::new("")))));
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: installing a handler that only makes async-signal-safe calls.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

struct Supervisor {
    child: Child,
    state: PathBuf,
    bin: PathBuf,
}

impl Supervisor {
    fn start(bin: &Path, scratch: &Path) -> Supervisor {
        let state = scratch.join("state");
        let log = std::fs::File::create(scratch.join("supervisor.log")).expect("log file");
        let child = Command::new(bin)
            .arg("--state-dir")
            .arg(&state)
            .env("SYSCONT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", bin.display())));
        let sock = state.join("agent.sock");
        let t = Instant::now();
        while !sock.exists() {
            if t.elapsed() > Duration::from_secs(10) {
                fail("supervisor did not create its agent socket");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        SUP_PID.store(child.id() as i32, Relaxed);
        Supervisor {
            child,
            state,
            bin: bin.to_path_buf(),
        }
    }
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    fn agent(&self) -> PathBuf {
        self.state.join("agent.sock")
    }
    fn stats_json(&self) -> Option<serde_json::Value> {
        let out = Command::new(&self.bin)
            .args(["--stats", "--json", "--state-dir"])
            .arg(&self.state)
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }
    fn stats_text(&self) -> String {
        Command::new(&self.bin)
            .args(["--stats", "--state-dir"])
            .arg(&self.state)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        SUP_PID.store(0, Relaxed);
        // SAFETY: signalling the supervisor process we started, by its pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child memory cgroup (v1) with a 512 MiB limit under our own.
struct MemCgroup {
    path: PathBuf,
}

impl MemCgroup {
    fn create() -> Option<MemCgroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (_, ctrl, path) = (p.next()?, p.next()?, p.next()?);
            ctrl.split(',')
                .any(|c| c == "memory")
                .then(|| path.to_string())
        })?;
        let base = Path::new("/sys/fs/cgroup/memory").join(rel.trim_start_matches('/'));
        let path = base.join(format!("syscont-bench-{}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let cg = MemCgroup { path };
        std::fs::write(cg.path.join("memory.limit_in_bytes"), CG_LIMIT.to_string()).ok()?;
        Some(cg)
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("warning: could not remove {}", self.path.display());
    }
}

fn is_mounted(p: &Path) -> bool {
    let want = p.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// `lxcfs -f` on a scratch mountpoint; stopped by pid, then unmounted.
struct Lxcfs {
    child: Child,
    mnt: PathBuf,
    version: String,
}

impl Lxcfs {
    fn start(scratch: &Path) -> Option<Lxcfs> {
        let mnt = scratch.join("lxcfs");
        std::fs::create_dir_all(&mnt).ok()?;
        let log = std::fs::File::create(scratch.join("lxcfs.log")).ok()?;
        let child = Command::new("lxcfs")
            .arg("-f")
            .arg("-p")
            .arg(scratch.join("lxcfs.pid"))
            .arg(&mnt)
            .stdin(Stdio::null())
            .stdout(log.try_clone().ok()?)
            .stderr(log)
            .spawn()
            .ok()?;
        let version = Command::new("lxcfs")
            .arg("--version")
            .output()
            .map(|o| {
                let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                s.trim().to_string()
            })
            .unwrap_or_default();
        LXCFS_PID.store(child.id() as i32, Relaxed);
        let l = Lxcfs {
            child,
            mnt,
            version,
        };
        let t = Instant::now();
        while !l.meminfo().exists() {
            if t.elapsed() > Duration::from_secs(10) {
                eprintln!("lxcfs did not come up; see {}/lxcfs.log", scratch.display());
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(l)
    }
    fn meminfo(&self) -> PathBuf {
        self.mnt.join("proc/meminfo")
    }
}

impl Drop for Lxcfs {
    fn drop(&mut self) {
        LXCFS_PID.store(0, Relaxed);
        // SAFETY: signalling the lxcfs process we started, by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            if t.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if is_mounted(&self.mnt) {
            let fm = Command::new("fusermount").arg("-u").arg(&self.mnt).status();
            if !matches!(fm, Ok(s) if s.success()) && is_mounted(&self.mnt) {
                let _ = Command::new("umount").arg(&self.mnt).status();
            }
        }
        let _ = std::fs::remove_dir(&self.mnt);
    }
}

// ---------------------------------------------------------------- statistics

fn med_min_max(v: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

fn fmt_stat(v: &[f64], prec: usize) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let (m, lo, hi) = med_min_max(v);
    format!("{m:.prec$} [{lo:.prec$}–{hi:.prec$}]")
}

/// Per-config samples, one per round (None when a run failed).
#[derive(Default)]
struct Results {
    order: Vec<String>,
    by: BTreeMap<String, Vec<Option<Sample>>>,
    loads: Vec<f64>,
}

impl Results {
    fn push(&mut self, name: &str, s: Option<Sample>) {
        if !self.by.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.by.entry(name.to_string()).or_default().push(s);
    }
    fn get(&self, name: &str, f: impl Fn(&Sample) -> f64) -> Vec<f64> {
        self.by
            .get(name)
            .map(|v| v.iter().flatten().map(&f).collect())
            .unwrap_or_default()
    }
    /// Per round: value of `name` divided by the best (lowest trapped) of
    /// `refs` in the same round.
    fn per_round_vs_best(&self, name: &str, refs: &[&str], f: impl Fn(&Sample) -> f64) -> Vec<f64> {
        let Some(ours) = self.by.get(name) else {
            return vec![];
        };
        let mut out = Vec::new();
        for (r, s) in ours.iter().enumerate() {
            let best = refs
                .iter()
                .filter_map(|n| {
                    self.by
                        .get(*n)
                        .and_then(|v| v.get(r))
                        .and_then(|x| x.as_ref())
                })
                .map(&f)
                .fold(f64::INFINITY, f64::min);
            if let Some(s) = s {
                if best.is_finite() {
                    out.push(f(s) / best);
                }
            }
        }
        out
    }
    fn per_round_ratio(&self, num: &str, den: &str) -> Vec<f64> {
        let (Some(a), Some(b)) = (self.by.get(num), self.by.get(den)) else {
            return vec![];
        };
        a.iter()
            .zip(b)
            .filter_map(|(x, y)| Some(x.as_ref()?.trapped / y.as_ref()?.trapped))
            .collect()
    }
}

// -------------------------------------------------------------------- main

fn main() {
    let o = Opts::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        fail("needs root (seccomp filters, lxcfs, cgroups)");
    }
    if o.scratch.exists() {
        let _ = std::fs::remove_dir_all(o.scratch.join("state"));
    }
    std::fs::create_dir_all(&o.scratch).expect("scratch dir");
    let started = chrono_like_now();
    let mut report = String::new();
    let uname = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let _ = writeln!(
        report,
        "# syscont-supervisor benchmark ({started}, kernel {uname}, {ncpu} CPUs)\n\n\
         rounds={} (interleaved), open iters={}, emulation iters={}, lxcfs iters={}; \
         values: median [min–max] over rounds, ns per operation\n",
        o.rounds, o.iters, o.emu_iters, o.lxcfs_iters
    );
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let sup = Supervisor::start(&o.supervisor, &o.scratch);
    let agent = sup.agent();
    eprintln!("supervisor pid {} on {}", sup.pid(), agent.display());
    let cg = MemCgroup::create();
    if cg.is_none() {
        eprintln!("warning: no child memory cgroup; emulation runs in our own cgroup");
    }
    let cgp = cg.as_ref().map(|c| c.path.as_path());
    install_signal_cleanup(&o.scratch, cgp);
    let lx = if o.skips("lxcfs") {
        None
    } else {
        Lxcfs::start(&o.scratch)
    };

    // ---- 1 and 2: interleaved rounds
    let mut res = Results::default();
    let open_refs = [
        "probe open block pin=same",
        "probe open sync pin=same",
        "probe open sync pin=none",
        "probe open block pin=none",
    ];
    let emu_refs = [
        "probe meminfo block pin=same",
        "probe meminfo sync pin=same",
        "probe meminfo block pin=none",
        "probe meminfo sync pin=none",
    ];
    if !o.skips("trap") {
        for round in 0..o.rounds {
            let run = |name: &str, f: &mut dyn FnMut() -> Option<Sample>, res: &mut Results| {
                if !o.only.is_empty() && !o.only.iter().any(|w| name.contains(w.as_str())) {
                    return;
                }
                let s = f();
                let load = loadavg();
                res.loads.push(load);
                match &s {
                    Some(s) => eprintln!(
                        "round {}/{} load={load:.2} {name}: native {:.0} trapped {:.0} ratio {:.2} sup_cpu {:.0} tgt_cpu {:.0} {}",
                        round + 1,
                        o.rounds,
                        s.native,
                        s.trapped,
                        s.ratio,
                        s.sup_cpu,
                        s.tgt_cpu,
                        s.note
                    ),
                    None => eprintln!("round {}/{} {name}: FAILED", round + 1, o.rounds),
                }
                res.push(name, s);
            };
            let spec = |op, iters, cg, pin| TrapSpec {
                op,
                iters,
                agent: &agent,
                cgroup: cg,
                id: format!(
                    "bench-{}-{round}",
                    if op == Op::Open { "open" } else { "meminfo" }
                ),
                pin,
            };
            // Trapped and continued open.
            run(
                "ours open (unpinned)",
                &mut || trap_run(&spec(Op::Open, o.iters, None, None), sup.pid()),
                &mut res,
            );
            for name in open_refs {
                let p: Vec<&str> = name.split(' ').collect();
                let pin = p[3].trim_start_matches("pin=");
                run(
                    name,
                    &mut || probe_run(&o, "open", p[2], pin, o.iters, None),
                    &mut res,
                );
            }
            if !o.skips("pinned") {
                run(
                    "ours open (target+supervisor on cpu0)",
                    &mut || trap_run(&spec(Op::Open, o.iters, None, Some(0)), sup.pid()),
                    &mut res,
                );
            }
            if o.busy_fds > 0 {
                let name = format!(
                    "ours open (unpinned, +{} idle fds in its container)",
                    o.busy_fds
                );
                run(
                    &name,
                    &mut || {
                        let id = format!("bench-busy-{round}");
                        let mut idle = Vec::new();
                        let mut init = 0;
                        for i in 0..o.busy_fds {
                            if let Some(k) = idle_target(&agent, &id, i == 0, init) {
                                init = if i == 0 { k.0 } else { init };
                                idle.push(k);
                            }
                        }
                        let mut sp = spec(Op::Open, o.iters, None, None);
                        sp.id = id;
                        let r = trap_run(&sp, sup.pid());
                        for (pid, ctl) in idle {
                            drop(ctl);
                            kill_and_reap(pid);
                        }
                        r
                    },
                    &mut res,
                );
            }
            // Emulated /proc/meminfo, target in the 512 MiB cgroup.
            run(
                "ours meminfo (unpinned)",
                &mut || trap_run(&spec(Op::Meminfo, o.emu_iters, cgp, None), sup.pid()),
                &mut res,
            );
            for name in emu_refs {
                let p: Vec<&str> = name.split(' ').collect();
                let pin = p[3].trim_start_matches("pin=");
                run(
                    name,
                    &mut || probe_run(&o, "meminfo", p[2], pin, o.emu_iters, cgp),
                    &mut res,
                );
            }
            if !o.skips("pinned") {
                run(
                    "ours meminfo (target+supervisor on cpu0)",
                    &mut || trap_run(&spec(Op::Meminfo, o.emu_iters, cgp, Some(0)), sup.pid()),
                    &mut res,
                );
            }
            if let Some(l) = &lx {
                run(
                    "lxcfs meminfo (unpinned)",
                    &mut || file_run(&l.meminfo(), o.lxcfs_iters, cgp),
                    &mut res,
                );
            }
        }
        report.push_str(&trap_tables(&o, &res, &open_refs, &emu_refs, lx.as_ref()));
    }
    drop(lx);

    // ---- 3: idle CPU with one registered target
    if !o.skips("idle") {
        report.push_str(&idle_section(&o, &sup));
    }
    // ---- 4: memory per registered fd
    if !o.skips("mem") {
        report.push_str(&mem_section(&o, &sup));
    }
    let _ = writeln!(
        report,
        "\n## Machine load\n\n{ncpu} vCPUs. 1-minute load average at start: {}; during the trap rounds: {}; at end: {}",
        load_start.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        fmt_stat(&res.loads, 2),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        report,
        "\n<details><summary>syscont-supervisor --stats at the end</summary>\n\n```\n{}```\n</details>",
        sup.stats_text()
    );
    drop(sup);
    drop(cg);
    let _ = std::fs::remove_dir_all(o.scratch.join("state"));
    println!("{report}");
    if let Some(out) = &o.out {
        std::fs::write(out, &report).expect("write report");
        eprintln!("report written to {}", out.display());
    }
}

fn chrono_like_now() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M:%S UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**missed**"
    }
}

fn trap_tables(
    o: &Opts,
    res: &Results,
    open_refs: &[&str],
    emu_refs: &[&str],
    lx: Option<&Lxcfs>,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "## Per configuration\n\n\
         | config | iters | native ns | trapped / file ns | ratio to native | supervisor CPU ns/notif | target CPU ns/op |\n\
         |---|---|---|---|---|---|---|"
    );
    for name in &res.order {
        let iters = if name.contains("lxcfs") {
            o.lxcfs_iters
        } else if name.contains("meminfo") {
            o.emu_iters
        } else {
            o.iters
        };
        let sup = if name.contains("lxcfs") {
            "-".to_string()
        } else {
            fmt_stat(&res.get(name, |s| s.sup_cpu), 0)
        };
        let _ = writeln!(
            t,
            "| {name} | {iters} | {} | {} | {} | {sup} | {} |",
            fmt_stat(&res.get(name, |s| s.native), 0),
            fmt_stat(&res.get(name, |s| s.trapped), 0),
            fmt_stat(&res.get(name, |s| s.ratio), 2),
            fmt_stat(&res.get(name, |s| s.tgt_cpu), 0),
        );
    }
    let ours_open = "ours open (unpinned)";
    let ours_emu = "ours meminfo (unpinned)";
    let open_t = res.per_round_vs_best(ours_open, open_refs, |s| s.trapped);
    let open_r = res.per_round_vs_best(ours_open, open_refs, |s| s.ratio);
    let emu_t = res.per_round_vs_best(ours_emu, emu_refs, |s| s.trapped);
    let emu_r = res.per_round_vs_best(ours_emu, emu_refs, |s| s.ratio);
    let open_pin = res.per_round_ratio(
        "ours open (target+supervisor on cpu0)",
        "probe open block pin=same",
    );
    let emu_pin = res.per_round_ratio(
        "ours meminfo (target+supervisor on cpu0)",
        "probe meminfo block pin=same",
    );
    let lx_speed = res.per_round_ratio("lxcfs meminfo (unpinned)", ours_emu);
    let m = |v: &[f64]| med_min_max(v).0;
    let _ = writeln!(
        t,
        "\n## Targets (per-round ratios against the same round's reference)\n\n\
         | target | measured | verdict |\n|---|---|---|"
    );
    let _ = writeln!(
        t,
        "| trapped+continued openat: ours ≤ 1.15× the probe's best same-run figure | {} (on trapped/native ratios: {}) | {} |",
        fmt_stat(&open_t, 2),
        fmt_stat(&open_r, 2),
        verdict(m(&open_t) <= 1.15)
    );
    if lx.is_some() {
        let _ = writeln!(
            t,
            "| emulated /proc/meminfo ≥ 3× faster than LXCFS (LXCFS time / ours) | {} | {} |",
            fmt_stat(&lx_speed, 2),
            verdict(m(&lx_speed) >= 3.0)
        );
    }
    let _ = writeln!(
        t,
        "| emulated /proc/meminfo within 1.3× of the probe's best emulation figure | {} (on trapped/native ratios: {}) | {} |",
        fmt_stat(&emu_t, 2),
        fmt_stat(&emu_r, 2),
        verdict(m(&emu_t) <= 1.3)
    );
    if !open_pin.is_empty() {
        let _ = writeln!(
            t,
            "| (diagnostic) openat, both on cpu0: ours / probe block pin=same | {} | - |",
            fmt_stat(&open_pin, 2)
        );
        let _ = writeln!(
            t,
            "| (diagnostic) meminfo, both on cpu0: ours / probe block pin=same | {} | - |",
            fmt_stat(&emu_pin, 2)
        );
    }
    let notes: Vec<String> = [ours_emu, "lxcfs meminfo (unpinned)"]
        .iter()
        .filter_map(|n| {
            res.by
                .get(*n)
                .and_then(|v| v.iter().flatten().next())
                .map(|s| format!("- {n}: first line read `{}`", s.note))
        })
        .collect();
    if let Some(l) = lx {
        let _ = writeln!(
            t,
            "\nLXCFS: `{}`, started by the benchmark on a scratch mountpoint.",
            l.version
        );
    }
    let _ = writeln!(
        t,
        "\nContent check (target in the 512 MiB memory cgroup):\n{}",
        notes.join("\n")
    );
    let ticks: Vec<f64> = res.get(ours_open, |s| s.sup_ticks as f64);
    let _ = writeln!(
        t,
        "\nSupervisor CPU is the sum of its threads' schedstat run time over the timed loop, divided by the \
         notifications in it (utime+stime ticks over the same window for `{ours_open}`: {}).\n",
        fmt_stat(&ticks, 0)
    );
    t
}

/// A target that registers and then makes no trapped call: returns (pid,
/// control socket). It does one trapped open first, so registration is done
/// when it answers.
fn idle_target(agent: &Path, id: &str, creating: bool, init_pid: i32) -> Option<(i32, UnixStream)> {
    let (mut parent, child) = UnixStream::pair().ok()?;
    let agent = agent.to_path_buf();
    let id = id.to_string();
    let pid = fork_child(parent.as_raw_fd(), move || {
        let mut ctl = child;
        let listener = install_filter();
        let init = if creating {
            std::process::id() as i32
        } else {
            init_pid
        };
        if !register(&agent, &listener, &id, creating, init) {
            return 20;
        }
        drop(listener);
        do_op(Op::Open);
        if ctl.write_all(b"R").is_err() {
            return 21;
        }
        // Block until the parent closes or writes; no trapped call.
        read_byte(&mut ctl);
        0
    });
    if !read_byte(&mut parent) {
        reap(pid);
        return None;
    }
    Some((pid, parent))
}

fn idle_section(o: &Opts, sup: &Supervisor) -> String {
    let mut t = String::from("\n## Idle supervisor CPU\n\n");
    let Some((pid, ctl)) = idle_target(&sup.agent(), "bench-idle", true, 0) else {
        t.push_str("idle target failed to register\n");
        return t;
    };
    std::thread::sleep(Duration::from_secs(1));
    let (ns0, tk0, cs0) = (
        cpu_ns(sup.pid()),
        cpu_ticks(sup.pid()),
        ctx_switches(sup.pid()),
    );
    std::thread::sleep(Duration::from_secs(o.idle_secs));
    let (ns1, tk1, cs1) = (
        cpu_ns(sup.pid()),
        cpu_ticks(sup.pid()),
        ctx_switches(sup.pid()),
    );
    drop(ctl);
    reap(pid);
    let _ = writeln!(
        t,
        "One registered target, no trapped call for {} s: supervisor utime+stime moved by {} ticks \
         (schedstat: {} ns, context switches of all its threads: {}) — target \"no CPU while idle\" {}.",
        o.idle_secs,
        tk1 - tk0,
        cpu_ns_delta(&ns0, &ns1),
        cs1 - cs0,
        verdict(tk1 == tk0)
    );
    t
}

fn ctx_switches(pid: i32) -> u64 {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|s| {
            s.lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                })
                .sum::<u64>()
        })
        .sum()
}

/// Wait until the supervisor holds at least (`more`) or at most (`!more`)
/// `want` fds. (It holds one listener per process, plus one eventfd per
/// container worker.)
fn wait_fds(sup: i32, want: usize, more: bool, timeout: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        let n = count_dir(&format!("/proc/{sup}/fd"));
        if (more && n >= want) || (!more && n <= want) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn mem_section(o: &Opts, sup: &Supervisor) -> String {
    let mut t = String::from(
        "\n## Supervisor memory per registered fd\n\n\
         Each fd belongs to a forked process that installed the filter, registered, and sleeps. \
         RSS from /proc/<pid>/status (VmRSS); growth is measured from the RSS just before the processes \
         were started; \"after exit\" is the RSS once they are all gone and their fds released.\n\n\
         | layout | fds | RSS before KiB | RSS with fds KiB | growth KiB/fd | threads | --stats rss_kib / fds_active | idle 5 s: CPU ticks (ns) | RSS after exit KiB |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let sp = sup.pid();
    let agent = sup.agent();
    for layout in ["one container", "one container per fd"] {
        for &n in &o.fds {
            std::thread::sleep(Duration::from_millis(500));
            let fd_base = count_dir(&format!("/proc/{sp}/fd"));
            let before = status_kib(sp, "VmRSS:");
            let mut kids: Vec<(i32, UnixStream)> = Vec::with_capacity(n);
            let mut init = 0;
            for i in 0..n {
                let (id, creating) = if layout == "one container" {
                    (format!("bench-mem-{n}"), i == 0)
                } else {
                    (format!("bench-mem-{n}-{i}"), true)
                };
                match idle_target(&agent, &id, creating, init) {
                    Some(k) => {
                        if i == 0 {
                            init = k.0;
                        }
                        kids.push(k);
                    }
                    None => eprintln!("target {i} failed to register"),
                }
            }
            let ok = wait_fds(sp, fd_base + kids.len(), true, Duration::from_secs(30));
            std::thread::sleep(Duration::from_secs(1));
            let with = status_kib(sp, "VmRSS:");
            let threads = count_dir(&format!("/proc/{sp}/task"));
            let stats = sup.stats_json();
            let (srss, sfds) = stats
                .as_ref()
                .map(|s| {
                    (
                        s["memory"]["rss_kib"].as_u64().unwrap_or(0),
                        s["memory"]["fds_active"].as_u64().unwrap_or(0),
                    )
                })
                .unwrap_or((0, 0));
            std::thread::sleep(Duration::from_millis(500));
            let (ns0, tk0) = (cpu_ns(sp), cpu_ticks(sp));
            std::thread::sleep(Duration::from_secs(5));
            let (ns1, tk1) = (cpu_ns(sp), cpu_ticks(sp));
            let registered = kids.len();
            for (pid, ctl) in kids {
                drop(ctl);
                kill_and_reap(pid);
            }
            let gone = wait_fds(sp, fd_base, false, Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(500));
            let after = status_kib(sp, "VmRSS:");
            let growth = (with as f64 - before as f64) / registered.max(1) as f64;
            eprintln!(
                "mem {layout} n={n}: registered {registered} (all fds seen: {ok}), RSS {before} -> {with} KiB \
                 ({growth:.1} KiB/fd), threads {threads}, after exit {after} (fds released: {gone})"
            );
            let _ = writeln!(
                t,
                "| {layout} | {registered} | {before} | {with} | {growth:.1} | {threads} | {srss} / {sfds} | {} ({}) | {after} |",
                tk1 - tk0,
                cpu_ns_delta(&ns0, &ns1)
            );
        }
    }
    t
}
