//! Outputs: one trait, so stdout, a serial line, MQTT, snapshots and the preview server are
//! interchangeable. Outputs never block the pipeline: a slow or dead one drops and counts.

pub mod jsonl;
pub mod mqtt;
pub mod nmea;
pub mod serial;
pub mod snapshot;

use crate::report::{FrameReport, Stats};

pub trait Sink: Send {
    /// A short name for logs.
    fn name(&self) -> String;

    /// One processed frame.
    fn frame(&mut self, report: &FrameReport);

    /// Called about ten times a second with the current counters: heartbeats, periodic stats.
    fn tick(&mut self, _stats: &Stats) {}

    /// Clean shutdown: flush what is pending, say goodbye (MQTT `offline`).
    fn close(&mut self) {}
}

/// Exponential back-off for reconnecting: 0.5 s doubling up to a cap.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: std::time::Duration,
    max: std::time::Duration,
}

impl Backoff {
    pub fn new(max: std::time::Duration) -> Backoff {
        Backoff { next: std::time::Duration::from_millis(500), max }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> std::time::Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = std::time::Duration::from_millis(500);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let d: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(d, [500, 1000, 2000, 3000, 3000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
    }
}
