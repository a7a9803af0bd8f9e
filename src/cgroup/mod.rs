//! cgroup v1 and v2 readers behind one view of a container's limits and usage.

/// Errors of locating or reading a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("reading {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
