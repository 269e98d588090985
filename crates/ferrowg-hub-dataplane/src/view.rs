//! What the data path decides with: the [`Directory`] of devices and the compiled policy, each
//! replaced whole by the sync loop and read without locks by the data-path threads.

use std::sync::Arc;

use arc_swap::ArcSwap;
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
    /// The directory in force.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.load_full()
    }

    /// Replaces the directory (if it changed).
    pub fn set_directory(&self, d: Directory) {
        if **self.directory.load() != d {
            self.directory.store(Arc::new(d));
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> Option<Arc<Compiled>> {
        (**self.policy.load()).clone()
    }

    /// Replaces the policy.
    pub fn set_policy(&self, p: Option<Arc<Compiled>>) {
        self.policy.store(Arc::new(p));
    }
}
