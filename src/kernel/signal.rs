//! The signal that wakes a worker thread blocked in `NOTIF_RECV`.
//!
//! A worker whose container has a single listener blocks in the receive
//! ioctl itself (the cheapest loop the kernel allows); the main loop
//! interrupts it with this signal when there is something else to do (a new
//! listener, a hang-up, shutdown). The handler does nothing: its only effect
//! is that the blocked ioctl returns `EINTR`. It is installed without
//! `SA_RESTART`, so interrupted calls are never silently restarted.

use std::io;

/// The wake signal: the second real-time signal glibc leaves to programs.
pub fn wake_signal() -> libc::c_int {
    libc::SIGRTMIN() + 1
}

extern "C" fn on_wake(_: libc::c_int) {}

/// Install the (empty) handler of the wake signal, process-wide.
pub fn install_wake_handler() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid starting value; the handler is
    // an extern "C" fn that does nothing (async-signal-safe); sa_mask is
    // initialised with sigemptyset before use.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_wake as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(wake_signal(), &sa, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Send the wake signal to one thread of this process.
pub fn wake(thread: libc::pthread_t) {
    // SAFETY: pthread_kill on a thread of ours whose JoinHandle the caller
    // still holds (so the pthread_t is valid); the handler does nothing.
    unsafe {
        libc::pthread_kill(thread, wake_signal());
    }
}
