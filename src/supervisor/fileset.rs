//! Files known by `(device, inode)`, per container, bounded.
//!
//! A worker keeps two such sets:
//! - the memfds it injected into the container's processes: only a file in
//!   this set is ever re-rendered when a reader rewinds, so a process cannot
//!   make the supervisor write into a file of its own making (a FIFO or a
//!   tmpfs file that merely carries the right name), nor into a memfd that
//!   another container was given;
//! - the container's procfs and sysfs files already identified as emulated
//!   by a full walk: a later open of the same file is recognised by a
//!   single stat.

use std::collections::{HashMap, VecDeque};

use crate::emulate::EmulatedFile;

/// Most files remembered per container; the oldest is forgotten first (it
/// then simply stops being refreshed).
const CAPACITY: usize = 16 * 1024;

/// `(device, inode)` → emulated file.
#[derive(Debug, Default)]
pub struct FileSet {
    files: HashMap<(u64, u64), EmulatedFile>,
    order: VecDeque<(u64, u64)>,
}

impl FileSet {
    /// Remember a file.
    pub fn insert(&mut self, dev: u64, ino: u64, file: EmulatedFile) {
        if self.files.insert((dev, ino), file).is_none() {
            self.order.push_back((dev, ino));
            if self.order.len() > CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.files.remove(&old);
                }
            }
        }
    }

    /// Which emulated file `(dev, ino)` is, if known.
    pub fn get(&self, dev: u64, ino: u64) -> Option<EmulatedFile> {
        self.files.get(&(dev, ino)).copied()
    }

    /// Number of files remembered.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets_oldest() {
        let mut s = FileSet::default();
        s.insert(1, 2, EmulatedFile::Meminfo);
        assert_eq!(s.get(1, 2), Some(EmulatedFile::Meminfo));
        assert_eq!(s.get(1, 3), None);
        for i in 0..CAPACITY as u64 {
            s.insert(9, i, EmulatedFile::Uptime);
        }
        assert_eq!(s.get(1, 2), None);
        assert_eq!(s.len(), CAPACITY);
    }
}
