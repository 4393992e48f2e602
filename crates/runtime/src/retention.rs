//! Event retention (`-event_retention`): every member with a component trims, from
//! time to time, the events that every subscription to a topic was delivered and
//! that are older than the retention (`EventStore::trim`), on the topics it knows
//! of: those its application subscribes to, those bound to Kafka, and those
//! published through it. A topic nobody of a running application subscribes to,
//! bridges or publishes to keeps its events until someone does.

use crate::Runtime;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The most events one trim transition deletes (a short write, however long the log).
const BATCH: u64 = 1000;

impl Runtime {
    /// How often the trimming pass runs: a fraction of the retention, between 1 s and
    /// a minute (events outlive their retention by at most this).
    fn trim_interval(&self) -> Duration {
        (self.config.event_retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    /// Notes a topic published through this member (it is trimmed here from now on).
    pub(crate) fn published_to(&self, topic: &str) {
        let mut topics = lock(&self.published);
        if !topics.contains(topic) {
            topics.insert(topic.to_string());
        }
    }

    pub(crate) async fn retention_loop(self: Arc<Self>) {
        let interval = self.trim_interval();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.shutdown_started() => return,
            }
            self.trim_pass().await;
        }
    }

    async fn trim_pass(&self) {
        let mut topics: BTreeSet<String> = lock(&self.published).clone();
        if let Some(kafka) = &self.kafka {
            topics.extend(kafka.bindings().iter().map(|b| b.topic.clone()));
        }
        match self.store.subscriptions().list_all().await {
            Ok(all) => {
                // Kept once seen: after the last subscription to a topic is cancelled,
                // trimming it here still tells the store (Redis: the application's
                // reader mark goes) that this application no longer holds its events.
                let mut known = lock(&self.published);
                for sub in all {
                    known.insert(sub.topic.clone());
                    topics.insert(sub.topic);
                }
            }
            Err(e) => tracing::error!("cannot read the event subscriptions to trim: {e}"),
        }
        for topic in topics {
            loop {
                match self
                    .store
                    .trim(&topic, self.config.event_retention, BATCH)
                    .await
                {
                    Ok(n) if n == BATCH => continue,
                    Ok(n) => {
                        if n > 0 {
                            tracing::debug!("trimmed {n} events of topic {topic}");
                        }
                        break;
                    }
                    Err(e) => {
                        tracing::error!("cannot trim the events of topic {topic}: {e}");
                        break;
                    }
                }
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
