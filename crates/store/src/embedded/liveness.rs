//! Exact failure detection for the embedded store. Every member holds an exclusive
//! OS file lock on `locks/<node>.lock` for its lifetime; the kernel releases it when
//! the process dies, however it dies. Each process watches every other member with a
//! thread blocked on that lock: acquiring it means the member is gone.

use super::db::Db;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub(crate) fn lock_path(dir: &Path, node: &str) -> PathBuf {
    dir.join("locks").join(format!("{node}.lock"))
}

/// Creates and locks the lock file of a joining member. Dropping the file releases it.
pub(crate) fn hold(dir: &Path, node: &str) -> std::io::Result<File> {
    let path = lock_path(dir, node);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    file.try_lock().map_err(std::io::Error::other)?;
    Ok(file)
}

/// The set of members this process watches.
pub(crate) struct Watchers {
    dir: PathBuf,
    app: String,
    db: Db,
    policy: crate::RecoveryPolicy,
    watched: Mutex<HashSet<String>>,
}

impl Watchers {
    pub(crate) fn new(
        dir: PathBuf,
        app: String,
        db: Db,
        policy: crate::RecoveryPolicy,
    ) -> Arc<Self> {
        Arc::new(Watchers {
            dir,
            app,
            db,
            policy,
            watched: Mutex::new(HashSet::new()),
        })
    }

    /// Starts watching every node of `nodes` not yet watched (except `own`).
    pub(crate) fn watch_all(
        self: &Arc<Self>,
        nodes: impl IntoIterator<Item = String>,
        own: &[String],
    ) {
        for node in nodes {
            if own.contains(&node) {
                continue;
            }
            let fresh = match self.watched.lock() {
                Ok(mut set) => set.insert(node.clone()),
                Err(_) => false,
            };
            if fresh {
                let this = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("kar-watch".into())
                    .spawn(move || this.watch(node));
                if let Err(e) = spawned {
                    tracing::error!("cannot start a member watcher: {e}");
                }
            }
        }
    }

    fn watch(self: Arc<Self>, node: String) {
        let path = lock_path(&self.dir, &node);
        // A missing lock file means the member is gone (its lock was cleaned up).
        let file = File::open(&path).ok();
        if let Some(file) = &file {
            if let Err(e) = file.lock() {
                tracing::error!("cannot watch member {node}: {e}");
                return;
            }
        }
        // The lock is ours: the member died or left. Remove it (idempotent).
        let app = self.app.clone();
        let gone = node.clone();
        let policy = self.policy;
        match self.db.run_blocking(move |conn| {
            super::recovery::remove_member(
                conn,
                &app,
                &gone,
                super::recovery::Removal::Died,
                policy,
            )
        }) {
            Ok(true) => tracing::warn!("member {node} died; its requests were re-routed"),
            Ok(false) => {}
            Err(e) => tracing::error!("cannot remove dead member {node}: {e}"),
        }
        let _ = std::fs::remove_file(&path);
        drop(file);
        if let Ok(mut set) = self.watched.lock() {
            set.remove(&node);
        }
    }
}
