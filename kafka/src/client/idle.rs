//! Clients that close themselves: slots that remember their last use, swept when idle, and
//! an owner that drops a librdkafka client off the async runtime (its destructor blocks).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Owns a librdkafka client and drops it on the blocking pool when inside a runtime.
pub(super) struct OffThread<T: Send + 'static>(pub(super) Option<T>);

impl<T: Send + 'static> OffThread<T> {
    pub(super) fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<T: Send + 'static> Drop for OffThread<T> {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(move || drop(v));
                }
                Err(_) => drop(v),
            }
        }
    }
}

/// A cached value and when it was last handed out.
pub(super) struct Slot<T> {
    pub(super) value: T,
    pub(super) last_used: Instant,
}

/// Removes the slots idle longer than `idle`; returns them so they drop outside the lock.
pub(super) fn sweep<K: Clone + Eq + std::hash::Hash, T>(
    map: &mut HashMap<K, Slot<T>>,
    idle: Duration,
) -> Vec<T> {
    let now = Instant::now();
    let stale: Vec<K> = map
        .iter()
        .filter(|(_, s)| now.duration_since(s.last_used) > idle)
        .map(|(k, _)| k.clone())
        .collect();
    stale
        .into_iter()
        .filter_map(|k| map.remove(&k).map(|s| s.value))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_idle_slots() {
        let mut m: HashMap<&str, Slot<u8>> = HashMap::new();
        let old = Instant::now()
            .checked_sub(Duration::from_secs(100))
            .unwrap();
        m.insert(
            "old",
            Slot {
                value: 1,
                last_used: old,
            },
        );
        m.insert(
            "new",
            Slot {
                value: 2,
                last_used: Instant::now(),
            },
        );
        assert_eq!(sweep(&mut m, Duration::from_secs(10)), [1]);
        assert!(m.contains_key("new"));
    }
}
