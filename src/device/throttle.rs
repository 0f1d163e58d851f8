//! A warning that can repeat with every frame, logged at a bounded rate with the count held back.

use std::time::{Duration, Instant};

/// Lets the first of a run of messages through, then at most one every `every`.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle { every, last: None, held: 0 }
    }

    /// Whether to log this one, and with what suffix (" (N more like it since)"); counts it otherwise.
    pub fn allow(&mut self) -> Option<String> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> Option<String> {
        if self.last.is_some_and(|t| now.duration_since(t) < self.every) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        let held = std::mem::take(&mut self.held);
        Some(if held == 0 { String::new() } else { format!(" ({held} more like it since the last)") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_period_with_the_count_of_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.allow_at(t0), Some(String::new()));
        for i in 1..=24 {
            assert_eq!(t.allow_at(t0 + Duration::from_millis(400 * i)), None);
        }
        assert_eq!(t.allow_at(t0 + Duration::from_secs(10)).as_deref(), Some(" (24 more like it since the last)"));
        assert_eq!(t.allow_at(t0 + Duration::from_secs(25)), Some(String::new()));
    }
}
