//! Shared fixture of the integration tests: the test environment started by
//! `scripts/env-up.sh` (syscont-supervisor, a dedicated dockerd with the
//! `syscont-runc` runtime registered, locally built images), helpers to run
//! containers through Docker and OCI bundles through runc, and parsers for
//! what the containers print.
//!
//! If the environment is missing, a test fails when `CI` is set and is
//! otherwise skipped with a visible `SKIPPED: <reason>` line on stderr.
//!
//! Environment variables (defaults match `scripts/lib.sh`):
//! - `SYSCONT_TEST_DOCKER_HOST` (default `unix:///run/syscont-test/docker.sock`)
//! - `SYSCONT_TEST_STATE_DIR` (default `/run/syscont-test/supervisor`)
//! - `SYSCONT_TEST_RUNTIME` (default `syscont-runc`): the Docker runtime under
//!   test; `runc` runs the same tests on plain runc, which proves the harness
//!   (the emulation tests then fail with the host's figures).
//! - `SYSCONT_TEST_JOBS` (default 3): containers started at once.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "syscont-busybox:test";
pub const BOOKWORM: &str = "syscont-bookworm:test";

/// The limits every "limited" container gets, and what it must see.
pub const MEM_LIMIT: &str = "256m";
pub const MEM_LIMIT_BYTES: u64 = 256 << 20;
pub const MEM_LIMIT_KB: u64 = 262_144;
pub const CPUSET: &str = "0";

/// Where `tests/fixtures` appears inside a container.
pub const FIXTURES: &str = "/fixtures";
/// Where the hostile helper appears inside a container.
pub const HOSTILE: &str = "/usr/local/bin/hostile";
/// Where [`Run::breakout`] puts the breakout helper.
#[allow(dead_code)]
pub const BREAKOUT: &str = "/usr/local/bin/breakout";

const DEFAULT_DOCKER_HOST: &str = "unix:///run/syscont-test/docker.sock";
const DEFAULT_STATE_DIR: &str = "/run/syscont-test/supervisor";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// The environment fixture
// ---------------------------------------------------------------------------

/// The test environment, checked once per test binary.
#[derive(Debug)]
pub struct Env {
    /// `unix://…` socket of the test dockerd.
    pub docker_host: String,
    /// The supervisor's `--state-dir`.
    pub state_dir: PathBuf,
    /// Docker runtime under test (`syscont-runc`, or `runc` for the baseline).
    pub runtime: String,
    /// Docker runtime of the parity reference (see [`Env::run_baseline`]).
    pub baseline: String,
}

impl Env {
    /// True when the runtime under test is syscont's.
    pub fn is_syscont(&self) -> bool {
        self.runtime == "syscont-runc"
    }

    /// The supervisor's agent socket.
    pub fn agent_socket(&self) -> PathBuf {
        self.state_dir.join("agent.sock")
    }
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn test_name() -> String {
    std::thread::current().name().unwrap_or("?").to_string()
}

/// Report a missing precondition: panic under CI, else print SKIPPED
/// straight to stderr (past libtest's capture) and return.
pub fn skip_or_fail(reason: &str) {
    if in_ci() {
        panic!("test environment incomplete (CI is set, so this fails): {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {}: {reason} (run scripts/test.sh, or scripts/env-up.sh && scripts/images.sh)",
        test_name()
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Root, or report why not (see [`skip_or_fail`]): for tests that need no
/// Docker (plain OCI bundles).
pub fn require_root() -> bool {
    if !is_root() {
        skip_or_fail("the integration tests need root");
    }
    is_root()
}

fn check_env() -> Result<Env, String> {
    if !is_root() {
        return Err("the integration tests need root".into());
    }
    let env = Env {
        docker_host: std::env::var("SYSCONT_TEST_DOCKER_HOST")
            .unwrap_or_else(|_| DEFAULT_DOCKER_HOST.into()),
        state_dir: std::env::var_os("SYSCONT_TEST_STATE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
        runtime: std::env::var("SYSCONT_TEST_RUNTIME").unwrap_or_else(|_| "syscont-runc".into()),
        baseline: String::new(),
    };
    let mut env = env;
    env.baseline = if env.is_syscont() {
        "syscont-runc-nonotify".into()
    } else {
        "runc".into()
    };
    let v = raw_docker(
        &env.docker_host,
        &["info", "--format", "{{json .Runtimes}}"],
        DEFAULT_TIMEOUT,
    );
    if v.status != 0 {
        return Err(format!(
            "no test dockerd on {}: {}",
            env.docker_host,
            v.stderr.trim()
        ));
    }
    for rt in [&env.runtime, &env.baseline] {
        if !v.stdout.contains(&format!("\"{rt}\"")) {
            return Err(format!(
                "dockerd on {} has no runtime named {rt}",
                env.docker_host
            ));
        }
    }
    for image in [BUSYBOX, BOOKWORM] {
        let i = raw_docker(
            &env.docker_host,
            &["image", "inspect", "--format", "{{.Id}}", image],
            DEFAULT_TIMEOUT,
        );
        if i.status != 0 {
            return Err(format!(
                "image {image} is missing (scripts/images.sh builds it)"
            ));
        }
    }
    if env.is_syscont() {
        supervisor_socket_ok(&env)?;
    }
    Ok(env)
}

fn supervisor_socket_ok(env: &Env) -> Result<(), String> {
    let sock = env.agent_socket();
    std::os::unix::net::UnixStream::connect(&sock)
        .map(drop)
        .map_err(|e| format!("syscont-supervisor is not serving {}: {e}", sock.display()))
}

/// The environment, or `None` after reporting why not (see [`skip_or_fail`]).
pub fn env() -> Option<&'static Env> {
    static ENV: OnceLock<Result<Env, String>> = OnceLock::new();
    match ENV.get_or_init(check_env) {
        Ok(e) => Some(e),
        Err(reason) => {
            skip_or_fail(reason);
            None
        }
    }
}

/// The environment with a running supervisor, whatever the runtime under
/// test (for tests that talk to the supervisor itself).
pub fn env_with_supervisor() -> Option<&'static Env> {
    let e = env()?;
    match supervisor_socket_ok(e) {
        Ok(()) => Some(e),
        Err(reason) => {
            skip_or_fail(&reason);
            None
        }
    }
}

/// `let env = require_env!();` returns from the test when the environment
/// is missing (outside CI).
#[macro_export]
macro_rules! require_env {
    () => {
        match common::env() {
            Some(e) => e,
            None => return,
        }
    };
    (supervisor) => {
        match common::env_with_supervisor() {
            Some(e) => e,
            None => return,
        }
    };
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// What a command printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Out {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Out {
    /// Panic with everything the command printed unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.status, 0, "command failed:\n{self}");
        self
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {} after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Run a command with a deadline; on timeout kill it and panic.
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> Out {
    let desc = format!("{cmd:?}");
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&t1.join().unwrap_or_default()).into_owned();
            let stderr = String::from_utf8_lossy(&t2.join().unwrap_or_default()).into_owned();
            panic!("timed out after {timeout:?}: {desc}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&t1.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&t2.join().unwrap_or_default()).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn raw_docker(host: &str, args: &[&str], timeout: Duration) -> Out {
    run_cmd(
        Command::new("docker").env("DOCKER_HOST", host).args(args),
        timeout,
    )
}

/// A process-wide limit on containers started at once: the machine is small
/// and shared.
pub struct Slot;

static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

impl Slot {
    pub fn take() -> Slot {
        let max = std::env::var("SYSCONT_TEST_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3usize)
            .max(1);
        let mut n = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= max {
            n = SLOT_FREED.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut n = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        SLOT_FREED.notify_one();
    }
}

// ---------------------------------------------------------------------------
// Docker
// ---------------------------------------------------------------------------

impl Env {
    /// `docker ARGS…` against the test daemon.
    pub fn docker(&self, args: &[&str]) -> Out {
        raw_docker(&self.docker_host, args, DEFAULT_TIMEOUT)
    }

    /// A `docker run` of IMAGE under the runtime under test.
    pub fn run(&self, image: &str) -> Run {
        Run::new(self, &self.runtime, image)
    }

    /// A `docker run` of IMAGE under plain runc (no user namespace).
    #[allow(dead_code)]
    pub fn run_plain_runc(&self, image: &str) -> Run {
        Run::new(self, "runc", image)
    }

    /// A `docker run` of IMAGE under the reference for parity: the same
    /// system container without the supervisor (`syscont-runc-nonotify`:
    /// same user namespace, same mounts, no seccomp interception) when
    /// syscont is under test, else plain runc.
    pub fn run_baseline(&self, image: &str) -> Run {
        Run::new(self, &self.baseline, image)
    }
}

/// Builder of a `docker run --rm --runtime=… --network none --pull never`.
#[derive(Clone)]
pub struct Run {
    docker_host: String,
    runtime: String,
    image: String,
    opts: Vec<String>,
    timeout: Duration,
}

impl Run {
    fn new(env: &Env, runtime: &str, image: &str) -> Run {
        Run {
            docker_host: env.docker_host.clone(),
            runtime: runtime.to_string(),
            image: image.to_string(),
            opts: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `--memory 256m --cpuset-cpus 0`.
    pub fn limited(self) -> Run {
        self.opt("--memory")
            .opt(MEM_LIMIT)
            .opt("--cpuset-cpus")
            .opt(CPUSET)
    }

    pub fn opt(mut self, o: &str) -> Run {
        self.opts.push(o.to_string());
        self
    }

    pub fn user(self, u: &str) -> Run {
        self.opt("--user").opt(u)
    }

    pub fn timeout(mut self, t: Duration) -> Run {
        self.timeout = t;
        self
    }

    /// Mount `tests/fixtures` read-only at [`FIXTURES`].
    pub fn fixtures(self) -> Run {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        self.opt("-v")
            .opt(&format!("{}:{FIXTURES}:ro", src.display()))
    }

    /// Mount the breakout helper read-only at [`BREAKOUT`].
    #[allow(dead_code)]
    pub fn breakout(self) -> Run {
        let bin = breakout_bin();
        self.opt("-v")
            .opt(&format!("{}:{BREAKOUT}:ro", bin.display()))
    }

    /// Mount the hostile helper read-only at [`HOSTILE`].
    pub fn hostile(self) -> Run {
        let bin = hostile_bin();
        self.opt("-v")
            .opt(&format!("{}:{HOSTILE}:ro", bin.display()))
    }

    fn base_args(&self, detach: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into()];
        a.push(if detach { "-d".into() } else { "--rm".into() });
        a.extend(
            [
                "--runtime",
                &self.runtime,
                "--network",
                "none",
                "--pull",
                "never",
                "--label",
                "syscont-test=1",
            ]
            .map(String::from),
        );
        a.extend(self.opts.iter().cloned());
        a.push(self.image.clone());
        a
    }

    /// Run CMD in a new container and wait for it.
    pub fn cmd(&self, cmd: &[&str]) -> Out {
        let _slot = Slot::take();
        let mut a = self.base_args(false);
        a.extend(cmd.iter().map(|s| s.to_string()));
        run_cmd(
            Command::new("docker")
                .env("DOCKER_HOST", &self.docker_host)
                .args(&a),
            self.timeout,
        )
    }

    /// `sh -c SCRIPT` in a new container.
    pub fn sh(&self, script: &str) -> Out {
        self.cmd(&["sh", "-c", script])
    }

    /// Start a detached container running CMD; removed when dropped.
    pub fn start(&self, cmd: &[&str]) -> Container {
        let _slot = Slot::take();
        self.start_unlimited(cmd)
    }

    /// [`Run::start`] without waiting for a [`Slot`] (for tests whose point
    /// is many creates at once).
    pub fn start_unlimited(&self, cmd: &[&str]) -> Container {
        let mut a = self.base_args(true);
        a.extend(cmd.iter().map(|s| s.to_string()));
        let out = run_cmd(
            Command::new("docker")
                .env("DOCKER_HOST", &self.docker_host)
                .args(&a),
            self.timeout,
        );
        assert_eq!(out.status, 0, "docker run -d failed:\n{out}");
        Container {
            docker_host: self.docker_host.clone(),
            id: out.stdout.trim().to_string(),
        }
    }
}

/// A detached test container, force-removed on drop.
pub struct Container {
    docker_host: String,
    pub id: String,
}

impl Container {
    pub fn docker(&self, args: &[&str]) -> Out {
        raw_docker(&self.docker_host, args, DEFAULT_TIMEOUT)
    }

    /// `docker exec [OPTS…] ID CMD…`
    pub fn exec_opts(&self, opts: &[&str], cmd: &[&str]) -> Out {
        let mut a = vec!["exec"];
        a.extend_from_slice(opts);
        a.push(&self.id);
        a.extend_from_slice(cmd);
        self.docker(&a)
    }

    pub fn exec(&self, cmd: &[&str]) -> Out {
        self.exec_opts(&[], cmd)
    }

    pub fn sh(&self, script: &str) -> Out {
        self.exec(&["sh", "-c", script])
    }

    /// `docker inspect -f FORMAT ID`, trimmed.
    #[allow(dead_code)]
    pub fn inspect(&self, format: &str) -> String {
        self.docker(&["inspect", "-f", format, &self.id])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    /// The host pid of the container's main process.
    #[allow(dead_code)]
    pub fn host_pid(&self) -> u32 {
        self.inspect("{{.State.Pid}}")
            .parse()
            .expect("a running container's pid")
    }

    /// `docker wait`: the exit code of the main process, within TIMEOUT.
    pub fn wait(&self, timeout: Duration) -> Out {
        raw_docker(&self.docker_host, &["wait", &self.id], timeout)
    }

    /// Wait until the container's main process prints LINE (in `docker logs`).
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            let l = self.docker(&["logs", &self.id]);
            if l.stdout.contains(needle) || l.stderr.contains(needle) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "container never printed {needle:?}:\n{l}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = raw_docker(&self.docker_host, &["rm", "-f", &self.id], DEFAULT_TIMEOUT);
    }
}

/// `syscont-supervisor --stats --json` of the test supervisor.
#[allow(dead_code)] // not every test binary reads the counters
pub fn supervisor_stats(env: &Env) -> serde_json::Value {
    let out = run_cmd(
        Command::new(env!("CARGO_BIN_EXE_syscont-supervisor"))
            .args(["--stats", "--json", "--state-dir"])
            .arg(&env.state_dir),
        Duration::from_secs(30),
    )
    .ok();
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--stats --json is not JSON ({e}):\n{out}"))
}

// ---------------------------------------------------------------------------
// Supervisor health
// ---------------------------------------------------------------------------

/// After something hostile: the supervisor still serves, i.e. a container
/// started now gets its own MemTotal, and the agent socket still accepts.
#[track_caller]
pub fn assert_supervisor_serving(env: &Env) {
    if env.is_syscont() {
        if let Err(e) = supervisor_socket_ok(env) {
            panic!("supervisor no longer serving: {e}");
        }
    }
    let out = env
        .run(BUSYBOX)
        .limited()
        .cmd(&["cat", "/proc/meminfo"])
        .ok();
    assert_eq!(
        meminfo_kb(&out.stdout, "MemTotal"),
        Some(MEM_LIMIT_KB),
        "a container started after the hostile load does not see its limit:\n{out}"
    );
}

// ---------------------------------------------------------------------------
// The hostile helper
// ---------------------------------------------------------------------------

/// `tests/hostile/hostile.c`, compiled once (static) per test binary.
pub fn hostile_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| c_helper("hostile")).clone()
}

/// The static breakout helper (`tests/hostile/breakout.c`), built once.
#[allow(dead_code)] // not every test binary uses it
pub fn breakout_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| c_helper("breakout")).clone()
}

/// Build `tests/hostile/NAME.c` as a static binary.
fn c_helper(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/hostile/{name}.c"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile");
    std::fs::create_dir_all(&dir).expect("mkdir for the C helpers");
    // Compile under a per-process name, then rename: a binary that a
    // container still has bind-mounted is never rewritten in place.
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    let bin = dir.join(name);
    run_cmd(
        Command::new("gcc")
            .args(["-static", "-O2", "-pthread", "-Wall", "-Werror", "-o"])
            .arg(&tmp)
            .arg(&src),
        DEFAULT_TIMEOUT,
    )
    .ok();
    std::fs::rename(&tmp, &bin).expect("rename the C helper into place");
    bin
}

/// syscont-runc's data directory of the test daemons.
#[allow(dead_code)]
pub fn syscont_data_dir() -> PathBuf {
    std::env::var_os("SYSCONT_TEST_SYSCONT_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/lib/syscont-test/syscont".into())
}

// ---------------------------------------------------------------------------
// OCI bundles run by runc / syscont-runc directly
// ---------------------------------------------------------------------------

/// A busybox bundle in a temporary directory, with its own runc `--root`.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub id: String,
}

/// Which engine runs a bundle.
pub enum Engine<'a> {
    /// Plain `runc`.
    Runc,
    /// `syscont-runc --syscont-state-dir DIR`.
    Syscont(&'a Path),
}

impl Bundle {
    /// A bundle whose process runs ARGS, with an optional memory limit.
    pub fn busybox(args: &[&str], memory_limit: Option<u64>) -> Bundle {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = tempfile::Builder::new()
            .prefix("syscont-bundle")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir rootfs");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("copy /bin/busybox (busybox-static)");
        for app in [
            "sh", "cat", "free", "grep", "head", "nproc", "sleep", "echo", "ls",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).expect("symlink");
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").expect("passwd");
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").expect("group");
        run_cmd(
            Command::new("runc")
                .arg("spec")
                .arg("--bundle")
                .arg(dir.path()),
            DEFAULT_TIMEOUT,
        )
        .ok();
        let cfg_path = dir.path().join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).expect("read config.json"))
                .expect("parse config.json");
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = args.iter().map(|s| serde_json::Value::from(*s)).collect();
        if let Some(limit) = memory_limit {
            cfg["linux"]["resources"]["memory"] = serde_json::json!({ "limit": limit });
        }
        std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).expect("json"))
            .expect("write config.json");
        let id = format!(
            "syscont-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        Bundle { dir, id }
    }

    /// runc's `--root` for this bundle's containers.
    pub fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc-root")
    }

    fn engine_cmd(&self, engine: &Engine) -> Command {
        match engine {
            Engine::Runc => {
                let mut c = Command::new("runc");
                c.arg("--root").arg(self.runc_root());
                c
            }
            Engine::Syscont(state_dir) => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_syscont-runc"));
                c.arg("--syscont-state-dir")
                    .arg(state_dir)
                    .arg("--syscont-data-dir")
                    .arg(syscont_data_dir())
                    .arg("--root")
                    .arg(self.runc_root());
                c
            }
        }
    }

    /// `ENGINE run --bundle DIR ID` in the foreground.
    pub fn run(&self, engine: &Engine) -> Out {
        let _slot = Slot::take();
        let mut c = self.engine_cmd(engine);
        c.arg("run")
            .arg("--bundle")
            .arg(self.dir.path())
            .arg(&self.id);
        run_cmd(&mut c, DEFAULT_TIMEOUT)
    }

    /// `ENGINE create --bundle DIR ID`.
    pub fn create(&self, engine: &Engine) -> Out {
        let mut c = self.engine_cmd(engine);
        c.arg("create")
            .arg("--bundle")
            .arg(self.dir.path())
            .arg(&self.id);
        run_cmd(&mut c, DEFAULT_TIMEOUT)
    }

    /// Ids listed by `runc --root … list -q`.
    pub fn listed(&self) -> Vec<String> {
        let out = run_cmd(
            Command::new("runc")
                .arg("--root")
                .arg(self.runc_root())
                .args(["list", "-q"]),
            DEFAULT_TIMEOUT,
        );
        out.stdout
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = run_cmd(
            Command::new("runc")
                .arg("--root")
                .arg(self.runc_root())
                .args(["delete", "-f", &self.id]),
            DEFAULT_TIMEOUT,
        );
    }
}

// ---------------------------------------------------------------------------
// Parsers
// ---------------------------------------------------------------------------

/// The kB figure of KEY in a meminfo text.
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The first figure of `/proc/uptime` text.
pub fn uptime_secs(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The host's own figures, read by the test process.
pub fn host_meminfo_kb(key: &str) -> u64 {
    let t = std::fs::read_to_string("/proc/meminfo").expect("host /proc/meminfo");
    meminfo_kb(&t, key).expect("host meminfo key")
}

pub fn host_uptime() -> f64 {
    uptime_secs(&std::fs::read_to_string("/proc/uptime").expect("host /proc/uptime"))
        .expect("host uptime")
}

pub fn host_cpu_count() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .expect("host /proc/cpuinfo")
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
}

/// Lines `KEY VALUE` (first space) of a helper's output, as a map.
pub fn kv_lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Keys whose value differs between two `kv_lines` outputs, with both values.
pub fn kv_diff(a: &str, b: &str) -> Vec<String> {
    let (ma, mb) = (kv_lines(a), kv_lines(b));
    let mut keys: Vec<&String> = ma.keys().chain(mb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| ma.get(*k) != mb.get(*k))
        .map(|k| format!("{k}: syscont={:?} runc={:?}", ma.get(k), mb.get(k)))
        .collect()
}
