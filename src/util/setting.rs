//! Settings checks: one error type that names the key in full (`boxes.threshold_scale: must be
//! positive`) and one range check used by every section's `validate`.

use std::fmt::Display;
use std::ops::{Range, RangeInclusive};

/// A setting that is out of range or malformed: the key as the config file spells it, with its
/// section, and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SettingError {
    pub key: String,
    pub message: String,
}

impl SettingError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> SettingError {
        SettingError { key: key.into(), message: message.into() }
    }

    /// The same error with the key under `section`: `count` in `lanes` is `lanes.count`.
    pub fn in_section(self, section: &str) -> SettingError {
        SettingError { key: format!("{section}.{}", self.key), ..self }
    }
}

/// An interval a setting must lie in, and how messages write it.
pub trait Interval<T> {
    fn holds(&self, v: &T) -> bool;
    fn describe(&self) -> String;
}

macro_rules! integer_intervals {
    ($($t:ty),*) => {$(
        impl Interval<$t> for RangeInclusive<$t> {
            fn holds(&self, v: &$t) -> bool {
                self.contains(v)
            }
            fn describe(&self) -> String {
                format!("{}..={}", self.start(), self.end())
            }
        }
    )*};
}
integer_intervals!(u8, u16, u32, u64, usize);

macro_rules! float_intervals {
    ($($t:ty),*) => {$(
        /// `[a, b]`
        impl Interval<$t> for RangeInclusive<$t> {
            fn holds(&self, v: &$t) -> bool {
                self.contains(v)
            }
            fn describe(&self) -> String {
                format!("[{}, {}]", self.start(), self.end())
            }
        }
        /// `[a, b)`
        impl Interval<$t> for Range<$t> {
            fn holds(&self, v: &$t) -> bool {
                self.contains(v)
            }
            fn describe(&self) -> String {
                format!("[{},{})", self.start, self.end)
            }
        }
        /// `(a, b]`
        impl Interval<$t> for AboveUpTo<$t> {
            fn holds(&self, v: &$t) -> bool {
                *v > self.0 && *v <= self.1
            }
            fn describe(&self) -> String {
                format!("({}, {}]", self.0, self.1)
            }
        }
    )*};
}
float_intervals!(f32, f64);

/// The interval `(a, b]`: above `a`, at most `b`.
#[derive(Clone, Copy, Debug)]
pub struct AboveUpTo<T>(pub T, pub T);

/// `Ok` when `value` lies in `interval`, else "`key`: `value` must be in `interval`". NaN lies in
/// no interval.
pub fn in_range<T: Display>(key: &str, value: T, interval: impl Interval<T>) -> Result<(), SettingError> {
    if interval.holds(&value) {
        Ok(())
    } else {
        Err(SettingError::new(key, format!("{} must be in {}", compact(&value), interval.describe())))
    }
}

/// A value as a message shows it: a number that would print with dozens of digits (`1e300`) in
/// scientific notation, and anything else cut at 64 characters, so that a hostile config cannot
/// flood the log.
pub fn compact(value: &impl Display) -> String {
    let s = value.to_string();
    if s.len() > 16
        && let Ok(v) = s.parse::<f64>()
    {
        return format!("{v:e}");
    }
    cut(&s, 64)
}

/// `s` for a message: control characters escaped (`\n`), so that a value from outside stays on its
/// log line, and the result cut at `max` characters (with an ellipsis when cut), so that it cannot flood
/// it.
pub fn cut(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in s.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        n += out[before..].chars().count();
        if n > max {
            // Whole characters or escapes only: cut before the one that went over.
            out.truncate(before);
            out.push_str("...");
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_key_and_the_interval() {
        assert!(in_range("count", 3u32, 1..=32).is_ok());
        assert_eq!(in_range("count", 0u32, 1..=32).unwrap_err().to_string(), "count: 0 must be in 1..=32");
        assert_eq!(in_range("iou", 3.0f32, 0.0..=1.0).unwrap_err().to_string(), "iou: 3 must be in [0, 1]");
        assert_eq!(in_range("fps", 0.0f64, AboveUpTo(0.0, 1000.0)).unwrap_err().to_string(), "fps: 0 must be in (0, 1000]");
        assert_eq!(in_range("f", 1.0f32, 0.0..1.0).unwrap_err().to_string(), "f: 1 must be in [0,1)");
        assert!(in_range("x", f32::NAN, 0.0..=1.0).is_err());
        assert_eq!(in_range("fps", 1e300f64, AboveUpTo(0.0, 1000.0)).unwrap_err().message, "1e300 must be in (0, 1000]");
        assert_eq!(compact(&"x".repeat(100)).len(), 67);
        // A value with a line break (a TOML "\n") stays on one line.
        assert_eq!(cut("a\nb\u{1b}[2J", 20), "a\\nb\\u{1b}[2J");
        assert_eq!(cut("\n\n\n", 4), "\\n\\n...");
        // The bound holds after escaping: 300 NULs are not 1800 characters.
        assert!(cut(&"\0".repeat(300), 300).chars().count() <= 303);
        assert_eq!(cut("abcdef", 3), "abc...");
        assert!(in_range("x", f64::NAN, AboveUpTo(0.0, 1.0)).is_err());
        let e = SettingError::new("count", "bad").in_section("lanes");
        assert_eq!(e.to_string(), "lanes.count: bad");
    }
}
