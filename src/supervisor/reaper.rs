//! The reaper: frees the host state of containers that are gone.
//!
//! `docker rm` never calls the runtime, so nothing would free a removed
//! container's directory and id range until the next create. A thread of
//! the supervisor looks once a second (see [`crate::runtime::store`] for
//! what "gone" means) and frees them promptly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::runtime::idrange::{Pool, DEFAULT_SIZE};
use crate::runtime::store::Store;

/// How often the reaper looks.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Start the reaper thread for the data directory `data_dir`.
pub fn spawn(data_dir: &Path) -> std::io::Result<()> {
    let data_dir: PathBuf = data_dir.to_path_buf();
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            let store = Store::new(&data_dir);
            // Releasing and listing ranges needs only the allocation file,
            // not the subordinate id files: a pool without runs will do.
            let pool = Pool::new(&data_dir, DEFAULT_SIZE, &[], &[]).ok();
            loop {
                if data_dir.exists() {
                    let freed = store.reap(pool.as_ref());
                    if !freed.is_empty() {
                        tracing::info!(count = freed.len(), "freed gone containers");
                    }
                }
                std::thread::sleep(PERIOD);
            }
        })
        .map(drop)
}
