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
    space: Condvar,
}

impl<T> LatestQueue<T> {
    pub fn new(capacity: usize) -> LatestQueue<T> {
        let capacity = capacity.max(1);
        LatestQueue {
            capacity,
            inner: Mutex::new(Inner { items: VecDeque::with_capacity(capacity), closed: false, dropped: 0 }),
            ready: Condvar::new(),
            space: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // A panicking holder cannot leave the deque half-updated (every update is one call), so the
        // data behind a poisoned lock is still consistent.
        crate::util::sync::lock(&self.inner)
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

    /// Adds an item, waiting while the queue is full (for sources whose every frame counts, like
    /// files or a pipe). Gives up and returns `false` when `cancel` is set or the queue is closed.
    pub fn push_wait(&self, item: T, cancel: &std::sync::atomic::AtomicBool) -> bool {
        let mut g = self.lock();
        while g.items.len() >= self.capacity {
            if g.closed || cancel.load(std::sync::atomic::Ordering::Relaxed) {
                return false;
            }
            g = self.space.wait_timeout(g, Duration::from_millis(50)).unwrap_or_else(|p| p.into_inner()).0;
        }
        g.items.push_back(item);
        drop(g);
        self.ready.notify_one();
        true
    }

    /// Takes the oldest item, waiting up to `timeout` for one.
    pub fn pop(&self, timeout: Duration) -> Pop<T> {
        let g = self.lock();
        let (mut g, _) = self
            .ready
            .wait_timeout_while(g, timeout, |i| i.items.is_empty() && !i.closed)
            .unwrap_or_else(|p| p.into_inner());
        match g.items.pop_front() {
            Some(item) => {
                drop(g);
                self.space.notify_one();
                Pop::Item(item)
            }
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
    fn push_wait_blocks_until_there_is_room() {
        use std::sync::atomic::AtomicBool;
        let q = Arc::new(LatestQueue::new(1));
        let cancel = Arc::new(AtomicBool::new(false));
        assert!(q.push_wait(1, &cancel));
        let (q2, c2) = (Arc::clone(&q), Arc::clone(&cancel));
        let t = std::thread::spawn(move || q2.push_wait(2, &c2));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(q.pop(Duration::ZERO), Pop::Item(1));
        assert!(t.join().unwrap());
        assert_eq!(q.pop(Duration::from_secs(1)), Pop::Item(2));
        assert_eq!(q.dropped(), 0);
        q.push(3);
        cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(!q.push_wait(4, &cancel), "cancelled while full");
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
