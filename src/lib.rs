//! syscont: system containers for Docker and containerd.
//!
//! The crate is split along the architecture:
//!
//! - [`runtime`]: the OCI runtime side (`syscont-runc`): runc's command line,
//!   the `config.json` rewrite, the seccomp profile merge, and what makes a
//!   container a system container (id ranges, ID-mapped rootfs and mounts,
//!   cgroup delegation, per-container host state).
//! - [`supervisor`]: the host daemon (`syscont-supervisor`): the seccomp agent
//!   socket, the registry of containers and notification fds, the event loops
//!   and the dispatch of each trapped call to its handler, and the counters.
//! - [`emulate`]: the container-relative files (`/proc/meminfo`, …) and
//!   `sysinfo(2)` figures, rendered from a container's view; no kernel calls.
//! - [`cgroup`]: cgroup v1 and v2 readers behind one view of limits and usage.
//! - [`kernel`]: thin wrappers over the kernel interfaces (seccomp notify
//!   ioctls, process memory, memfd, path resolution); the only `unsafe` code.
//! - [`agent_meta`]: the `listenerMetadata` contract shared by both binaries.

pub mod agent_meta;
pub mod cgroup;
pub mod emulate;
pub mod kernel;
pub mod runtime;
pub mod supervisor;

#[cfg(test)]
pub(crate) mod testutil;
