//! A bounded hand-off between pipeline threads that drops the oldest item when full, so a slow
//! consumer always gets the freshest frames and never falls more than `capacity` behind.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What [`LatestQueue::pop`] found.
#[derive(Debug, PartialEq)]
pub enum Pop<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Empty,
    /// The producer closed the queue and everything in it has been taken.
    Closed,
}

struct Inner<T> {
    items: VecDeque<T>,
    closed: bool,
    dropped: u64,
}

pub struct LatestQueue<T> {
    capacity: usize,
    inner: Mutex<Inner<T>>,
    ready: Condvar,
}

impl<T> LatestQueue<T> {
    pub fn new(capacity: usize) -> LatestQueue<T> {
        let capacity = capacity.max(1);
        LatestQueue {
            capacity,
            inner: Mutex::new(Inner { items: VecDeque::with_capacity(capacity), closed: false, dropped: 0 }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panicking holder cannot leave the deque half-updated (every update is one call), so the
        // data behind a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an item; when full, the oldest is dropped (and counted). Returns whether one was dropped.
    pub fn push(&self, item: T) -> bool {
        let mut g = self.lock();
        let dropped = if g.items.len() >= self.capacity {
            g.items.pop_front();
            g.dropped += 1;
            true
        } else {
            false
        };
        g.items.push_back(item);
        drop(g);
        self.ready.notify_one();
        dropped
    }

    /// Takes the oldest item, waiting up to `timeout` for one.
    pub fn pop(&self, timeout: Duration) -> Pop<T> {
        let g = self.lock();
        let (mut g, _) = self
            .ready
            .wait_timeout_while(g, timeout, |i| i.items.is_empty() && !i.closed)
            .unwrap_or_else(|p| p.into_inner());
        match g.items.pop_front() {
            Some(item) => Pop::Item(item),
            None if g.closed => Pop::Closed,
            None => Pop::Empty,
        }
    }

    /// No more items will come; consumers drain what is left, then see `Closed`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Items dropped because the consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn drops_the_oldest_when_full() {
        let q = LatestQueue::new(2);
        assert!(!q.push(1));
        assert!(!q.push(2));
        assert!(q.push(3));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(2));
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(3));
        assert_eq!(q.pop(Duration::from_millis(5)), Pop::Empty);
        q.push(4);
        q.close();
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(4));
        assert_eq!(q.pop(Duration::from_secs(5)), Pop::Closed);
    }

    #[test]
    fn wakes_a_waiting_consumer() {
        let q = Arc::new(LatestQueue::new(1));
        let q2 = Arc::clone(&q);
        let t = std::thread::spawn(move || q2.pop(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        q.push(7u32);
        assert_eq!(t.join().unwrap(), Pop::Item(7));
    }
}
