//! What the data path decides with: the [`Directory`] of devices and the compiled policy, each
//! replaced whole by the sync loop and read without locks by the data-path threads.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use ferrowg_policy::Compiled;

use crate::directory::Directory;

/// The directory and the policy in force.
#[derive(Default)]
pub struct View {
    directory: ArcSwap<Directory>,
    /// `None` until a policy is set: nothing passes between devices.
    policy: ArcSwap<Option<Arc<Compiled>>>,
}

impl View {
    /// The directory in force (a guard: no reference count is taken on the data path).
    pub fn directory(&self) -> Guard<Arc<Directory>> {
        self.directory.load()
    }

    /// Replaces the directory (if it changed).
    pub fn set_directory(&self, d: Directory) {
        if **self.directory.load() != d {
            self.directory.store(Arc::new(d));
        }
    }

    /// The policy in force (a guard, as [`View::directory`]).
    pub fn policy(&self) -> Guard<Arc<Option<Arc<Compiled>>>> {
        self.policy.load()
    }

    /// Replaces the policy.
    pub fn set_policy(&self, p: Option<Arc<Compiled>>) {
        self.policy.store(Arc::new(p));
    }
}
