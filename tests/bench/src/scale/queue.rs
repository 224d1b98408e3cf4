//! An SQS queue in simulated time: messages become visible at their due instant (DelaySeconds,
//! or a hold), and a consumer takes a batch as Lambda's poller does, waiting out the batching
//! window when fewer than a batch are waiting.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

pub struct SimQueue<M> {
    start: Instant,
    /// (due, in ms since the start; a sequence number for the order sent) → message.
    items: Mutex<BTreeMap<(u64, u64), M>>,
    seq: AtomicU64,
    wake: Notify,
}

impl<M> SimQueue<M> {
    pub fn new(start: Instant) -> Self {
        Self { start, items: Mutex::new(BTreeMap::new()), seq: AtomicU64::new(0), wake: Notify::new() }
    }

    fn now_ms(&self) -> u64 {
        Instant::now().duration_since(self.start).as_millis() as u64
    }

    /// Sends a message that becomes visible after `delay`.
    pub fn send(&self, delay: Duration, message: M) {
        let due = self.now_ms() + delay.as_millis() as u64;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.items.lock().unwrap().insert((due, seq), message);
        self.wake.notify_one();
    }

    /// Messages visible now and not yet taken.
    pub fn visible(&self) -> usize {
        let now = self.now_ms();
        self.items.lock().unwrap().range(..(now + 1, 0)).count()
    }

    /// Every message not yet taken, visible or not.
    pub fn drain(&self) -> Vec<M> {
        std::mem::take(&mut *self.items.lock().unwrap()).into_values().collect()
    }

    fn take(&self, max: usize) -> Vec<M> {
        let now = self.now_ms();
        let mut items = self.items.lock().unwrap();
        let due: Vec<(u64, u64)> = items.range(..(now + 1, 0)).take(max).map(|(k, _)| *k).collect();
        due.into_iter().filter_map(|k| items.remove(&k)).collect()
    }

    /// The next batch of at most `max` visible messages, once there is one.
    pub async fn receive(&self, max: usize, window: Duration) -> Vec<M> {
        loop {
            let now = self.now_ms();
            let head = self.items.lock().unwrap().keys().next().map(|(due, _)| *due);
            match head {
                Some(due) if due <= now => {
                    if !window.is_zero() && self.visible() < max {
                        tokio::time::sleep(window).await;
                    }
                    let batch = self.take(max);
                    if !batch.is_empty() {
                        return batch;
                    }
                }
                Some(due) => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(due - now)) => {}
                        _ = self.wake.notified() => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}
