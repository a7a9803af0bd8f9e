//! Malformed payloads on the supervisor's agent socket, and a peer that is
//! not root, are refused (the connection is closed); the supervisor goes on
//! serving.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The tests of this file run one at a time, so that each can see its own
/// effect on the supervisor's counters.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn stats(env: &Env) -> serde_json::Value {
    supervisor_stats(env)
}

/// A counter of `--stats --json`; one that has not been created yet (no such
/// call so far) counts 0.
fn counter(v: &serde_json::Value, path: &[&str]) -> u64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    match cur {
        serde_json::Value::Null => 0,
        c => c.as_u64().unwrap_or_else(|| {
            panic!(
                "counter {} in --stats --json is not a number:\n{v:#}",
                path.join(".")
            )
        }),
    }
}

/// Run F and return how much the counter at PATH grew meanwhile.
fn growth(env: &Env, path: &[&str], f: impl FnOnce()) -> u64 {
    let before = counter(&stats(env), path);
    f();
    // The counter may be bumped just after the connection is closed.
    let start = Instant::now();
    loop {
        let now = counter(&stats(env), path);
        if now > before || start.elapsed() > Duration::from_secs(3) {
            return now - before;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sample_state(pid: u32) -> String {
    serde_json::json!({
        "ociVersion": "1.0.2-dev",
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": "{\"v\":1,\"orig\":{}}",
        "state": {"ociVersion": "1.0.2-dev", "id": "syscont-test-bogus", "status": "creating",
                  "pid": pid, "bundle": "/nonexistent"}
    })
    .to_string()
}

/// Wait up to 5 s for the supervisor to close the connection.
#[track_caller]
fn assert_closed(mut s: UnixStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{what}: unexpected read error {e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: the supervisor kept the connection open"
        );
    }
}

fn connect(env: &Env) -> UnixStream {
    UnixStream::connect(env.agent_socket()).expect("connect to the agent socket")
}

/// Send DATA with FD attached (SCM_RIGHTS).
fn send_with_fd(s: &UnixStream, data: &[u8], fd: i32) {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let iov = [std::io::IoSlice::new(data)];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(s.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).expect("sendmsg");
}

#[test]
fn garbage_bytes_are_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_payload"], || {
        let mut s = connect(env);
        s.write_all(b"\x00\xff\xfe garbage that is not JSON }}}\n")
            .expect("write");
        assert_closed(s, "garbage");
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_payload"
    );
    assert_supervisor_serving(env);
}

#[test]
fn truncated_json_is_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_payload"], || {
        let mut s = connect(env);
        let full = sample_state(std::process::id());
        s.write_all(&full.as_bytes()[..full.len() / 2])
            .expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        assert_closed(s, "truncated JSON then EOF");
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_payload"
    );
    assert_supervisor_serving(env);
}

#[test]
fn huge_message_is_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_payload"], || {
        let mut s = connect(env);
        s.set_write_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut msg = b"{\"ociVersion\":\"".to_vec();
        msg.resize(1 << 20, b'a');
        // The supervisor may close before taking all of it: a failed write is fine.
        let _ = s.write_all(&msg);
        assert_closed(s, "1 MiB message");
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_payload"
    );
    assert_supervisor_serving(env);
}

#[test]
fn json_without_fd_is_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_payload"], || {
        let mut s = connect(env);
        s.write_all(sample_state(std::process::id()).as_bytes())
            .expect("write");
        assert_closed(s, "ContainerProcessState without a seccomp fd");
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_payload"
    );
    assert_supervisor_serving(env);
}

#[test]
fn fd_without_json_is_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_payload"], || {
        let s = connect(env);
        let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
        send_with_fd(&s, b" ", devnull.as_raw_fd());
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        assert_closed(s, "fd without JSON");
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_payload"
    );
    assert_supervisor_serving(env);
}

#[test]
fn json_with_a_fd_that_is_not_a_seccomp_listener_is_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_payload"], || {
        let s = connect(env);
        let devnull = std::fs::File::open("/dev/null").expect("/dev/null");
        send_with_fd(
            &s,
            sample_state(std::process::id()).as_bytes(),
            devnull.as_raw_fd(),
        );
        assert_closed(s, "JSON with /dev/null as the seccomp fd");
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_payload"
    );
    assert_supervisor_serving(env);
}

#[test]
fn non_root_peer_is_refused() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let refused = growth(env, &["refused_peer"], || {
        // uid 65534 with CAP_DAC_OVERRIDE only, so that it can reach the socket
        // in the 0700 state directory: the supervisor must check the peer's uid.
        let out = run_cmd(
            Command::new("setpriv")
                .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .args([
                    "--inh-caps",
                    "-all,+dac_override",
                    "--ambient-caps",
                    "+dac_override",
                ])
                .arg(hostile_bin())
                .arg("agent-peer")
                .arg(env.agent_socket()),
            Duration::from_secs(60),
        );
        assert!(
            out.stdout.contains("connect ok"),
            "the non-root peer could not even connect:\n{out}"
        );
        assert!(
            out.stdout.contains("peer closed"),
            "connection from uid 65534 was not closed:\n{out}"
        );
        assert!(
            out.stdout.contains("trapped ENOSYS"),
            "the supervisor kept the seccomp fd of a non-root peer (its trapped call was answered):\n{out}"
        );
    });
    assert_eq!(
        refused, 1,
        "the refusal should be counted once in refused_peer"
    );
    assert_supervisor_serving(env);
}

#[test]
fn emulated_opens_are_counted() {
    let env = require_env!(supervisor);
    let _serial = serial();
    let emulated = growth(env, &["totals", "openat", "emulated"], || {
        let out = env
            .run(BUSYBOX)
            .limited()
            .sh("for i in $(seq 20); do cat /proc/meminfo >/dev/null; done")
            .ok();
        assert!(out.stderr.is_empty(), "{out}");
    });
    assert!(
        emulated >= 20,
        "20 emulated reads, but openat.emulated grew by {emulated}"
    );
}
