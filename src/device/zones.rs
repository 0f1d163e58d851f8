//! Alarm zones: named polygons of the image (`[zones.NAME]`) in which staff can switch the
//! motionless-swimmer alarm off for a while (a lesson in the shallow end, a lane rope being moved),
//! over MQTT or HTTP; each switches back on by itself when its time is up.

use crate::pipeline::geometry::point_in_polygon;
use crate::util::setting::{AboveUpTo, SettingError, in_range};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// One zone (`[zones.NAME]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSettings {
    /// The zone's corners in the image, pixels of the camera frame, in order around it.
    pub polygon: Vec<[f64; 2]>,
    /// Minutes a bare `off` switches it off for.
    #[serde(default = "d_off_min")]
    pub off_min: f64,
    /// The longest it may be off, minutes: longer requests are refused.
    #[serde(default = "d_max_off_min")]
    pub max_off_min: f64,
}

fn d_off_min() -> f64 {
    10.0
}
fn d_max_off_min() -> f64 {
    60.0
}

impl ZoneSettings {
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.polygon.len() < 3 || self.polygon.len() > 64 {
            return Err(SettingError::new("polygon", format!("needs 3 to 64 corners, got {}", self.polygon.len())));
        }
        if self.polygon.iter().flatten().any(|v| !v.is_finite() || v.abs() > 1e6) {
            return Err(SettingError::new("polygon", "corners must be finite pixel coordinates"));
        }
        in_range("max_off_min", self.max_off_min, AboveUpTo(0.0, 24.0 * 60.0))?;
        in_range("off_min", self.off_min, AboveUpTo(0.0, self.max_off_min))?;
        Ok(())
    }

    /// Whether an image point lies in the zone.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        point_in_polygon(x, y, &self.polygon)
    }
}

/// A zone's name: what MQTT topics and URLs can carry.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a switch request asks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Switch {
    On,
    /// Off for the zone's `off_min`.
    Off,
    /// Off for this many minutes.
    OffFor(f64),
}

impl Switch {
    /// `on`, `off`, or a number of minutes (`15`, `off 15`, `off=15`).
    pub fn parse(s: &str) -> Result<Switch, String> {
        let s = s.trim().to_ascii_lowercase();
        let minutes = |m: &str| -> Result<Switch, String> {
            let v: f64 = m.trim().parse().map_err(|_| format!("'{s}' is not on, off or a number of minutes"))?;
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("'{s}': minutes must be more than 0"));
            }
            Ok(Switch::OffFor(v))
        };
        match s.as_str() {
            "on" => Ok(Switch::On),
            "off" => Ok(Switch::Off),
            _ => match s.strip_prefix("off").map(|r| r.trim_start_matches(['=', ' '])) {
                Some(m) => minutes(m),
                None => minutes(&s),
            },
        }
    }
}

/// A zone's state as outputs show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ZoneState {
    pub zone: String,
    /// `on` (watched) or `off`.
    pub state: &'static str,
    /// While off: when it switches back on (Unix seconds) and how long until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_s: Option<f64>,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ZoneError {
    #[error("no zone named '{0}' (the config's [zones.NAME] sections name them)")]
    Unknown(String),
    #[error("{0}")]
    Bad(String),
    #[error("zone '{zone}' may be off for at most {max} minutes, not {asked}")]
    TooLong { zone: String, max: f64, asked: f64 },
}

/// The zones and which are off, shared by the pipeline (which mutes them), MQTT and HTTP (which switch
/// them) and the outputs (which show them).
#[derive(Default)]
pub struct ZoneControl {
    zones: Mutex<BTreeMap<String, (ZoneSettings, Option<SystemTime>)>>,
    /// Bumped on every change, so outputs publish only when something changed.
    version: AtomicU64,
    /// The frames' clock ahead of the wall clock, milliseconds ([`follow`](Self::follow)).
    lead_ms: AtomicI64,
}

impl ZoneControl {
    pub fn new(zones: &BTreeMap<String, ZoneSettings>) -> ZoneControl {
        let c = ZoneControl::default();
        c.set_zones(zones);
        c
    }

    /// The zones of a (re)loaded config: those still named keep their off time.
    pub fn set_zones(&self, zones: &BTreeMap<String, ZoneSettings>) {
        let mut z = crate::util::sync::lock(&self.zones);
        let old = std::mem::take(&mut *z);
        for (name, s) in zones {
            let until = old.get(name).and_then(|o| o.1);
            z.insert(name.clone(), (s.clone(), until));
        }
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        crate::util::sync::lock(&self.zones).is_empty()
    }

    /// Keeps [`now`](Self::now) on the clock of the frames the alarm is timed by (`frame`, the latest
    /// frame's time): a live camera's is the wall clock, a replay's runs ahead of it or behind.
    pub fn follow(&self, frame: SystemTime) {
        let wall = SystemTime::now();
        let lead = match frame.duration_since(wall) {
            Ok(d) => d.as_millis().min(i64::MAX as u128) as i64,
            Err(e) => -(e.duration().as_millis().min(i64::MAX as u128) as i64),
        };
        self.lead_ms.store(lead, Ordering::Relaxed);
    }

    /// The time on the frames' clock now: when a switch from MQTT or HTTP starts, and what states
    /// are given at, so a zone is off for its minutes of the alarm's time.
    pub fn now(&self) -> SystemTime {
        let wall = SystemTime::now();
        let lead = self.lead_ms.load(Ordering::Relaxed);
        let d = Duration::from_millis(lead.unsigned_abs());
        (if lead >= 0 { wall.checked_add(d) } else { wall.checked_sub(d) }).unwrap_or(wall)
    }

    /// Switches `zone` at `now`; its new state.
    pub fn switch(&self, zone: &str, what: Switch, now: SystemTime) -> Result<ZoneState, ZoneError> {
        let mut z = crate::util::sync::lock(&self.zones);
        let (s, until) = z.get_mut(zone).ok_or_else(|| ZoneError::Unknown(zone.chars().take(40).collect()))?;
        let minutes = match what {
            Switch::On => None,
            Switch::Off => Some(s.off_min),
            Switch::OffFor(m) if m > s.max_off_min => return Err(ZoneError::TooLong { zone: zone.into(), max: s.max_off_min, asked: m }),
            Switch::OffFor(m) => Some(m),
        };
        *until = minutes.map(|m| now + Duration::from_secs_f64(m * 60.0));
        self.version.fetch_add(1, Ordering::Relaxed);
        Ok(state(zone, *until, now))
    }

    /// Zones whose off time is up at `now`, switched back on (each logged once).
    pub fn expire(&self, now: SystemTime) -> Vec<String> {
        let mut z = crate::util::sync::lock(&self.zones);
        let mut back = Vec::new();
        for (name, (_, until)) in z.iter_mut() {
            if until.is_some_and(|u| u <= now) {
                *until = None;
                back.push(name.clone());
            }
        }
        if !back.is_empty() {
            self.version.fetch_add(1, Ordering::Relaxed);
        }
        back
    }

    /// Whether an image point is in a zone that is off at `now`.
    pub fn muted(&self, x: f64, y: f64, now: SystemTime) -> bool {
        crate::util::sync::lock(&self.zones).values().any(|(s, until)| until.is_some_and(|u| u > now) && s.contains(x, y))
    }

    /// Every zone's state at `now`.
    pub fn states(&self, now: SystemTime) -> Vec<ZoneState> {
        crate::util::sync::lock(&self.zones).iter().map(|(n, (_, until))| state(n, until.filter(|u| *u > now), now)).collect()
    }

    /// The zones' outlines and whether each is off, for drawing.
    pub fn outlines(&self, now: SystemTime) -> Vec<(String, Vec<[f64; 2]>, bool)> {
        crate::util::sync::lock(&self.zones).iter().map(|(n, (s, until))| (n.clone(), s.polygon.clone(), until.is_some_and(|u| u > now))).collect()
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn state(zone: &str, until: Option<SystemTime>, now: SystemTime) -> ZoneState {
    let round = |v: f64| (v * 10.0).round() / 10.0;
    ZoneState {
        zone: zone.to_string(),
        state: if until.is_some() { "off" } else { "on" },
        until: until.map(|u| round(unix(u))),
        remaining_s: until.map(|u| round(u.duration_since(now).map(|d| d.as_secs_f64()).unwrap_or(0.0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> BTreeMap<String, ZoneSettings> {
        let square = |x: f64| ZoneSettings { polygon: vec![[x, 0.0], [x + 100.0, 0.0], [x + 100.0, 100.0], [x, 100.0]], off_min: 10.0, max_off_min: 60.0 };
        BTreeMap::from([("shallow".to_string(), square(0.0)), ("steps".to_string(), square(200.0))])
    }

    #[test]
    fn a_zone_switched_off_mutes_its_area_until_its_time_is_up() {
        let c = ZoneControl::new(&zones());
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(!c.muted(50.0, 50.0, t0));
        let v = c.version();
        let s = c.switch("shallow", Switch::OffFor(2.0), t0).unwrap();
        assert_eq!((s.state, s.remaining_s), ("off", Some(120.0)));
        assert!(c.version() > v);
        assert!(c.muted(50.0, 50.0, t0) && !c.muted(250.0, 50.0, t0) && !c.muted(150.0, 50.0, t0));
        let later = t0 + Duration::from_secs(119);
        assert!(c.muted(50.0, 50.0, later) && c.expire(later).is_empty());
        let up = t0 + Duration::from_secs(120);
        assert!(!c.muted(50.0, 50.0, up));
        assert_eq!(c.expire(up), ["shallow"]);
        assert!(c.expire(up).is_empty(), "said once");
        assert!(c.states(up).iter().all(|s| s.state == "on" && s.until.is_none()));
        // A bare off is the zone's off_min; on ends it at once.
        assert_eq!(c.switch("steps", Switch::Off, up).unwrap().remaining_s, Some(600.0));
        assert_eq!(c.switch("steps", Switch::On, up).unwrap().state, "on");
    }

    #[test]
    fn a_switch_lasts_its_minutes_on_the_frames_clock() {
        // A replay whose frames run an hour ahead of the wall clock (or behind it): a zone switched
        // off for 2 minutes is off for 2 minutes of the frames' time, as the alarm counts it.
        for lead in [3600i64, -3600] {
            let c = ZoneControl::new(&zones());
            let at = |s: i64| if s >= 0 { SystemTime::now() + Duration::from_secs(s as u64) } else { SystemTime::now() - Duration::from_secs(s.unsigned_abs()) };
            let frame = at(lead);
            c.follow(frame);
            assert!(c.now().duration_since(frame).unwrap_or_default() < Duration::from_secs(5), "lead {lead}");
            c.switch("shallow", Switch::OffFor(2.0), c.now()).unwrap();
            assert!(c.muted(50.0, 50.0, frame + Duration::from_secs(100)), "lead {lead}");
            assert!(!c.muted(50.0, 50.0, frame + Duration::from_secs(130)), "lead {lead}");
            assert_eq!(c.states(c.now())[0].state, "off");
        }
        // Before any frame: the wall clock.
        let c = ZoneControl::new(&zones());
        assert!(c.now().duration_since(SystemTime::now() - Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let c = ZoneControl::new(&zones());
        let now = SystemTime::now();
        assert!(matches!(c.switch("pool", Switch::Off, now), Err(ZoneError::Unknown(_))));
        let e = c.switch("shallow", Switch::OffFor(61.0), now).unwrap_err();
        assert!(e.to_string().contains("at most 60 minutes"), "{e}");
        assert!(!c.muted(50.0, 50.0, now));
        assert_eq!(Switch::parse("ON"), Ok(Switch::On));
        assert_eq!(Switch::parse(" off "), Ok(Switch::Off));
        assert_eq!(Switch::parse("15"), Ok(Switch::OffFor(15.0)));
        assert_eq!(Switch::parse("off=5"), Ok(Switch::OffFor(5.0)));
        assert_eq!(Switch::parse("off 2.5"), Ok(Switch::OffFor(2.5)));
        for bad in ["", "maybe", "-3", "0", "off=x", "nan", "inf"] {
            assert!(Switch::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reload_keeps_the_off_time_of_zones_still_named() {
        let c = ZoneControl::new(&zones());
        let now = SystemTime::now();
        c.switch("shallow", Switch::Off, now).unwrap();
        c.switch("steps", Switch::Off, now).unwrap();
        let mut next = zones();
        next.remove("steps");
        c.set_zones(&next);
        let s = c.states(now);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].zone.as_str(), s[0].state), ("shallow", "off"));
    }

    #[test]
    fn settings_and_names_are_checked() {
        let z = zones().remove("shallow").unwrap();
        assert!(z.validate().is_ok());
        assert!(ZoneSettings { polygon: vec![[0.0, 0.0], [1.0, 1.0]], ..z.clone() }.validate().is_err());
        assert!(ZoneSettings { off_min: 90.0, ..z.clone() }.validate().is_err());
        assert!(ZoneSettings { polygon: vec![[0.0, 0.0], [1.0, f64::NAN], [2.0, 0.0]], ..z }.validate().is_err());
        assert!(valid_name("shallow-end_2") && !valid_name("a/b") && !valid_name("") && !valid_name("+"));
    }
}
