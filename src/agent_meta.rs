//! The contract between `syscont-runc` and `syscont-supervisor`: what the
//! runtime writes into `linux.seccomp.listenerMetadata`, and where the
//! supervisor's sockets live.
//!
//! runc hands the metadata string to the agent verbatim in
//! `ContainerProcessState.metadata`, so this is how the supervisor learns the
//! original seccomp action of every syscall the runtime turned into a
//! `SCMP_ACT_NOTIFY`: a call that is not emulated must get exactly what the
//! profile would have given it, never more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the metadata format written by this build.
pub const METADATA_VERSION: u32 = 1;

/// Default directory that holds every socket the supervisor serves.
pub const DEFAULT_STATE_DIR: &str = "/run/syscont";

/// File name of the seccomp agent socket inside the state directory.
pub const AGENT_SOCKET: &str = "agent.sock";

/// File name of the operator (statistics) socket inside the state directory.
pub const STATS_SOCKET: &str = "stats.sock";

/// Path of the agent socket for a state directory.
pub fn agent_socket(state_dir: &Path) -> PathBuf {
    state_dir.join(AGENT_SOCKET)
}

/// Path of the statistics socket for a state directory.
pub fn stats_socket(state_dir: &Path) -> PathBuf {
    state_dir.join(STATS_SOCKET)
}

/// The action a profile gave a syscall before the runtime made it NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OrigAction {
    /// `SCMP_ACT_ALLOW` or `SCMP_ACT_LOG`: a non-emulated call continues.
    Allow,
    /// `SCMP_ACT_ERRNO`: a non-emulated call fails with this errno.
    Errno { errno: u32 },
}

/// What the runtime puts in `listenerMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerMetadata {
    /// Format version ([`METADATA_VERSION`]).
    pub v: u32,
    /// Original action of each intercepted syscall, by name.
    pub orig: BTreeMap<String, OrigAction>,
}

/// Errors of parsing the metadata string.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("listener metadata is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "listener metadata version {0} is not supported (this build reads {METADATA_VERSION})"
    )]
    Version(u32),
}

impl ListenerMetadata {
    /// Parse the metadata string that runc forwarded.
    pub fn parse(s: &str) -> Result<Self, MetaError> {
        let m: ListenerMetadata = serde_json::from_str(s)?;
        if m.v != METADATA_VERSION {
            return Err(MetaError::Version(m.v));
        }
        Ok(m)
    }

    /// Serialise for `listenerMetadata`.
    pub fn to_json(&self) -> String {
        // Serialising a map of strings and plain enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Original action of an intercepted syscall; `None` if it was not
    /// intercepted by this runtime.
    pub fn orig_action(&self, name: &str) -> Option<OrigAction> {
        self.orig.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut orig = BTreeMap::new();
        orig.insert("openat".to_string(), OrigAction::Allow);
        orig.insert("mount".to_string(), OrigAction::Errno { errno: 1 });
        let m = ListenerMetadata {
            v: METADATA_VERSION,
            orig,
        };
        let back = ListenerMetadata::parse(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            back.orig_action("mount"),
            Some(OrigAction::Errno { errno: 1 })
        );
        assert_eq!(back.orig_action("read"), None);
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        assert!(matches!(
            ListenerMetadata::parse(r#"{"v":99,"orig":{}}"#),
            Err(MetaError::Version(99))
        ));
        assert!(ListenerMetadata::parse("{\"meta\":\"x\"").is_err());
    }
}
