//! Thin, safe wrappers over the kernel interfaces the supervisor needs.
//!
//! This is where the project's `unsafe` lives: the seccomp user-notification
//! ioctls ([`notify`]), reading and writing another process's memory
//! ([`procmem`]), memfds ([`memfd`]), resolving a path the way a trapped
//! process would see it ([`resolve`]), per-architecture syscall tables
//! ([`arch`]), a few `/proc/<pid>` look-ups ([`proc`]), small file,
//! socket, poll and clock calls ([`fs`]), a level-triggered epoll set
//! ([`epoll`]), the fd holder's sockets ([`seqpacket`]), the workers' wake
//! signal ([`signal`]), ID-mapped mounts ([`idmap`]), overlay mounts
//! ([`overlay`]) and the mount table ([`mountinfo`]). Everything above
//! this module works with safe types (`OwnedFd`, `BorrowedFd`, slices).

pub mod arch;
pub mod epoll;
pub mod fs;
pub mod idmap;
pub mod inflight;
pub mod memfd;
pub mod mountinfo;
pub mod notify;
pub mod overlay;
pub mod proc;
pub mod procmem;
pub mod resolve;
pub mod seqpacket;
pub mod signal;
pub mod uts;

use std::io;

/// Errors of the kernel wrappers. The `errno` is kept so that callers can
/// answer a trapped call with exactly what the kernel said.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("{op}: {source}")]
    Sys {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl KernelError {
    /// Wrap the current `errno` for operation `op`.
    pub(crate) fn last(op: &'static str) -> Self {
        KernelError::Sys {
            op,
            source: io::Error::last_os_error(),
        }
    }

    /// The errno behind this error, if it came from a syscall.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Sys { source, .. } => source.raw_os_error(),
            KernelError::Invalid(_) => None,
        }
    }
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, KernelError>;
