//! The OCI seccomp-agent protocol: one connection per container process,
//! carrying a `ContainerProcessState` JSON document and, as `SCM_RIGHTS`,
//! the process's seccomp listener fd.
//!
//! runc (1.1–1.3) never closes the connection after sending, so a message is
//! taken as soon as the JSON is complete; a peer that sends more than
//! [`MAX_MESSAGE`] bytes, malformed JSON, or the wrong number of fds is
//! refused.

use std::os::fd::{BorrowedFd, OwnedFd};

use serde::Deserialize;

/// Largest message accepted (runc's are about 1 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most fds accepted in one connection before it is refused.
const MAX_FDS: usize = 4;

/// Errors of the agent protocol.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("malformed ContainerProcessState: {0}")]
    Json(serde_json::Error),
    #[error("expected exactly one fd named seccompFd, got {names} named and {received} received")]
    Fds { names: usize, received: usize },
    #[error("peer closed the connection before a complete message")]
    Truncated,
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// `state` of a `ContainerProcessState` (the OCI state of the container).
#[derive(Debug, Clone, Deserialize)]
pub struct OciState {
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub bundle: String,
}

/// The document an OCI runtime sends to the seccomp agent.
#[derive(Debug, Clone, Deserialize)]
pub struct ContainerProcessState {
    #[serde(rename = "ociVersion", default)]
    pub oci_version: String,
    pub fds: Vec<String>,
    /// The process the fd belongs to (0 when the runtime does not know).
    #[serde(default)]
    pub pid: i32,
    /// `linux.seccomp.listenerMetadata`, verbatim.
    #[serde(default)]
    pub metadata: String,
    pub state: OciState,
}

/// A complete registration: the document and its listener fd.
#[derive(Debug)]
pub struct Registration {
    pub state: ContainerProcessState,
    /// The document as received (kept by the fd holder).
    pub raw: Vec<u8>,
    pub fd: OwnedFd,
}

/// Bytes and fds received so far on one agent connection.
#[derive(Debug, Default)]
pub struct Pending {
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// What a read on a connection produced.
#[derive(Debug)]
pub enum Progress {
    /// Need more bytes.
    More,
    /// A complete registration.
    Done(Box<Registration>),
}

impl Pending {
    /// Nothing received yet.
    pub fn is_empty(&self) -> bool {
        self.buf.trim_ascii().is_empty() && self.fds.is_empty()
    }

    /// Add received bytes and fds, and try to complete the message.
    pub fn feed(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Progress, AgentError> {
        self.fds.extend(fds);
        if self.fds.len() > MAX_FDS {
            return Err(AgentError::Fds {
                names: 0,
                received: self.fds.len(),
            });
        }
        if self.buf.len() + bytes.len() > MAX_MESSAGE {
            return Err(AgentError::TooLarge);
        }
        self.buf.extend_from_slice(bytes);
        self.try_complete()
    }

    /// The peer closed: whatever is here must be complete now.
    pub fn finish(&mut self) -> Result<Registration, AgentError> {
        match self.try_complete()? {
            Progress::Done(r) => Ok(*r),
            Progress::More => Err(AgentError::Truncated),
        }
    }

    fn try_complete(&mut self) -> Result<Progress, AgentError> {
        let text = self.buf.trim_ascii();
        if text.is_empty() {
            return Ok(Progress::More);
        }
        let mut de =
            serde_json::Deserializer::from_slice(text).into_iter::<ContainerProcessState>();
        match de.next() {
            None => Ok(Progress::More),
            Some(Err(e)) if e.is_eof() => Ok(Progress::More),
            Some(Err(e)) => Err(AgentError::Json(e)),
            Some(Ok(state)) => {
                let names = state
                    .fds
                    .iter()
                    .filter(|n| n.as_str() == "seccompFd")
                    .count();
                if names != 1 || state.fds.len() != 1 || self.fds.len() != 1 {
                    return Err(AgentError::Fds {
                        names: state.fds.len(),
                        received: self.fds.len(),
                    });
                }
                let fd = self.fds.remove(0);
                let raw = text[..de.byte_offset()].to_vec();
                Ok(Progress::Done(Box::new(Registration { state, raw, fd })))
            }
        }
    }
}

/// Receive what is available on a non-blocking connection: bytes and any
/// `SCM_RIGHTS` fds. `Ok(None)` means the peer closed; `WouldBlock` comes
/// back as an error of that kind.
pub fn receive(
    stream: BorrowedFd<'_>,
    buf: &mut [u8],
) -> std::io::Result<Option<(usize, Vec<OwnedFd>)>> {
    crate::kernel::fs::recv_with_fds(stream, buf, MAX_FDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memfd() -> OwnedFd {
        crate::kernel::memfd::create("test", b"").unwrap()
    }

    const SAMPLE: &str = r#"{"ociVersion":"1.0.2-dev","fds":["seccompFd"],"pid":15102,"metadata":"m","state":{"ociVersion":"1.0.2-dev","id":"abc","status":"creating","pid":15102,"bundle":"/b"}}"#;

    #[test]
    fn complete_in_pieces() {
        let mut p = Pending::default();
        let (a, b) = SAMPLE.as_bytes().split_at(40);
        assert!(matches!(p.feed(a, vec![memfd()]).unwrap(), Progress::More));
        match p.feed(b, vec![]).unwrap() {
            Progress::Done(r) => {
                assert_eq!(r.state.state.id, "abc");
                assert_eq!(r.state.pid, 15102);
                assert_eq!(r.state.metadata, "m");
            }
            Progress::More => panic!("incomplete"),
        }
    }

    #[test]
    fn samples_from_runc_and_crun_parse() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/container_process_state.json"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let arr = v.as_array().unwrap();
        assert!(arr.len() >= 6);
        for s in arr {
            let mut p = Pending::default();
            let payload = serde_json::to_vec(&s["payload"]).unwrap();
            assert!(matches!(
                p.feed(&payload, vec![memfd()]).unwrap(),
                Progress::Done(_)
            ));
        }
    }

    #[test]
    fn refuses_bad_input() {
        let mut p = Pending::default();
        assert!(matches!(
            p.feed(b"garbage{", vec![]),
            Err(AgentError::Json(_))
        ));
        let mut p = Pending::default();
        assert!(matches!(
            p.feed(SAMPLE.as_bytes(), vec![]),
            Err(AgentError::Fds { .. })
        ));
        let mut p = Pending::default();
        assert!(matches!(
            p.feed(SAMPLE.as_bytes(), vec![memfd(), memfd()]),
            Err(AgentError::Fds { .. })
        ));
        let mut p = Pending::default();
        let big = vec![b' '; MAX_MESSAGE + 1];
        assert!(matches!(p.feed(&big, vec![]), Err(AgentError::TooLarge)));
        let mut p = Pending::default();
        p.feed(&SAMPLE.as_bytes()[..20], vec![memfd()]).unwrap();
        assert!(matches!(p.finish(), Err(AgentError::Truncated)));
        let mut p = Pending::default();
        assert!(matches!(
            p.feed(br#"{"fds":["seccompFd"],"state":{}}"#, vec![memfd()]),
            Err(AgentError::Json(_))
        ));
    }
}
