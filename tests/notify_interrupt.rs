//! The worker's wake signal can land at any moment of an answer; an fd
//! injected with `SECCOMP_ADDFD_FLAG_SEND` must still reach the trapped
//! call. (The kernel marks such a call replied before it waits for the
//! target to take the fd, so a signal in that wait would make the call
//! return 0 with no fd — an `open` "returning" stdin.) Needs no root:
//! a filter with a listener only needs no_new_privs.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use syscont::kernel::notify::{NotifyFd, Readiness};

/// Trap `getppid` on the calling thread only; returns the listener.
fn trap_getppid_on_this_thread() -> OwnedFd {
    #[cfg(target_arch = "x86_64")]
    let arch = syscont::kernel::arch::AUDIT_ARCH_X86_64;
    #[cfg(target_arch = "aarch64")]
    let arch = syscont::kernel::arch::AUDIT_ARCH_AARCH64;
    let f = [
        bpf_stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        bpf_jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, arch, 1, 0),
        bpf_stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        bpf_stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        bpf_jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            libc::SYS_getppid as u32,
            0,
            1,
        ),
        bpf_stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_USER_NOTIF),
        bpf_stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: f.len() as u16,
        filter: f.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with integer arguments; seccomp(2) reads the program
    // through a pointer to a valid sock_fprog whose filter outlives the call.
    let fd = unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog,
        )
    };
    assert!(fd >= 0, "seccomp: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

fn bpf_stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

#[test]
fn injected_fds_survive_the_wake_signal() {
    const CALLS: usize = 20_000;
    syscont::kernel::signal::install_wake_handler().unwrap();
    let null = std::fs::File::open("/dev/null").unwrap();
    let null_rdev = nix::sys::stat::fstat(null.as_raw_fd()).unwrap().st_rdev;

    let (fd_tx, fd_rx) = std::sync::mpsc::channel();
    // The trapped side: every getppid must return a new fd for /dev/null.
    let caller = std::thread::spawn(move || {
        fd_tx.send(trap_getppid_on_this_thread()).unwrap();
        let mut wrong = Vec::new();
        for i in 0..CALLS {
            // SAFETY: getppid through syscall(2); the supervisor side
            // answers it with a new fd.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            if r < 3 {
                wrong.push(format!(
                    "call {i}: {r} ({})",
                    std::io::Error::last_os_error()
                ));
                continue;
            }
            // SAFETY: r is a new fd the supervisor side installed in this
            // process for this call; we own it from here.
            let fd = unsafe { OwnedFd::from_raw_fd(r as i32) };
            match nix::sys::stat::fstat(fd.as_raw_fd()) {
                Ok(st) if st.st_rdev == null_rdev => {}
                other => wrong.push(format!("call {i}: fd {r} is not /dev/null: {other:?}")),
            }
        }
        wrong
    });
    let mut listener = NotifyFd::new(fd_rx.recv().unwrap()).unwrap();
    // As the worker sets it (where the kernel has it).
    listener.set_sync_wake_up();

    // The answering side, as a worker does it.
    let answerer = std::thread::spawn(move || {
        let mut answered = 0usize;
        let mut failed = Vec::new();
        loop {
            match listener.readiness() {
                Readiness::Gone => break,
                Readiness::Idle => {
                    let mut p = [nix::poll::PollFd::new(
                        listener.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let _ = nix::poll::poll(&mut p, 100u16);
                    continue;
                }
                Readiness::Pending => {}
            }
            let n = match listener.recv() {
                Ok(n) => n,
                Err(_) => continue,
            };
            match listener.add_fd_and_send(n.id, null.as_fd(), true) {
                Ok(_) => answered += 1,
                Err(e) => failed.push(e.to_string()),
            }
        }
        (answered, failed)
    });

    // The main loop's side: wake signals at the answering thread, flat out.
    let done = Arc::new(AtomicBool::new(false));
    let target = answerer.as_pthread_t();
    let stop = done.clone();
    let signaller = std::thread::spawn(move || {
        let mut sent = 0u64;
        let start = Instant::now();
        while !stop.load(SeqCst) && start.elapsed() < Duration::from_secs(120) {
            syscont::kernel::signal::wake(target);
            sent += 1;
            // Not flat out: a flood keeps the answering thread in its
            // handler; a signal every few tens of microseconds lands in
            // the middle of answers (without the fix, ~5% of them lost
            // their fd on this machine).
            std::thread::sleep(Duration::from_micros(20));
        }
        sent
    });

    let wrong = caller.join().expect("trapped thread");
    // The signaller stops before the answering thread is joined (its
    // pthread_t stays valid until then).
    done.store(true, SeqCst);
    let sent = signaller.join().unwrap();
    let (answered, failed) = answerer.join().expect("answering thread");
    assert!(sent > 1000, "only {sent} wake signals were sent");
    assert!(
        wrong.is_empty() && failed.is_empty(),
        "{} of {CALLS} trapped calls got no fd under {sent} wake signals: {:?}\nanswers that failed: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)],
        &failed[..failed.len().min(5)],
    );
    assert_eq!(answered, CALLS);
}
