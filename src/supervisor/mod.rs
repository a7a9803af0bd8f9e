//! The supervisor side: `syscont-supervisor`, one per host.
//!
//! - [`server`]: the main loop (agent and stats sockets, signals, workers).
//! - [`agent`]: the OCI seccomp-agent protocol.
//! - [`worker`]: one event loop per container serving its notifications.
//! - [`handlers`]: what each trapped syscall gets.
//! - [`files`]: which real files are emulated.
//! - [`nested`]: which cgroup's figures a caller sees (the innermost).
//! - [`holder`]: the fd holder that keeps listeners across a restart.
//! - [`fileset`]: files known by `(device, inode)`: memfds handed to a
//!   container (refreshed on rewind), emulated files already identified.
//! - [`stats`]: counters for operators.
//! - [`sysctls`]: each container's own values of the emulated sysctls.
//! - [`ratelimit`]: log rate limiting.
//! - [`setid`]: no set-id or capability-bearing files on ID-mapped mounts.
//! - [`reaper`]: frees the host state of containers that are gone.

pub mod agent;
pub mod files;
pub mod fileset;
pub mod handlers;
pub mod holder;
pub mod nested;
pub mod ratelimit;
pub mod reaper;
pub mod server;
pub mod setid;
pub mod stats;
pub mod sysctls;
pub mod worker;

use std::path::PathBuf;

/// Errors that stop the supervisor (never a container's doing).
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("syscont-supervisor must run as root")]
    NotRoot,
    #[error("another syscont-supervisor is already running with state directory {0}")]
    AlreadyRunning(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
