//! Reporting a refused `create`/`run` where the caller looks for it.
//!
//! runc owns its `--log` file; syscont writes to it only when it refuses a
//! call and runc never runs. containerd's shim reports an OCI runtime failure
//! with the last `"level":"error"` entry of that file (not with stderr), so
//! without this entry `docker run` would say only "exit status 1". The entry
//! is one line in runc's own format: logrus JSON (`--log-format json`, what
//! containerd uses) or logrus text.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

/// Errors of appending to the engine's log.
#[derive(Debug, thiserror::Error)]
pub enum RuncLogError {
    #[error("cannot append to the runtime log {path}: {source}")]
    Append {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `secs` since the epoch as RFC 3339 UTC (`2006-01-02T15:04:05Z`).
fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// One error entry in runc's format.
fn entry(format: Option<&str>, msg: &str, secs: u64) -> String {
    let time = rfc3339(secs);
    if format == Some("json") {
        format!("{}\n", json!({"level": "error", "msg": msg, "time": time}))
    } else {
        format!("time={:?} level=error msg={:?}\n", time, msg)
    }
}

/// Append an error entry to the engine's log file.
pub fn append_error(log: &Path, format: Option<&str>, msg: &str) -> Result<(), RuncLogError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let line = entry(format, msg, secs);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|source| RuncLogError::Append {
            path: log.display().to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_912_267), "2026-11-29T00:31:07Z");
    }

    #[test]
    fn entries_in_both_formats() {
        let j = entry(Some("json"), "no \"supervisor\"", 0);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "no \"supervisor\"");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert_eq!(
            entry(None, "x y", 0),
            "time=\"1970-01-01T00:00:00Z\" level=error msg=\"x y\"\n"
        );
    }

    #[test]
    fn appends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.json");
        std::fs::write(&p, "{\"level\":\"info\"}\n").unwrap();
        append_error(&p, Some("json"), "m").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(append_error(Path::new("/nonexistent/x/log"), None, "m").is_err());
    }
}
