//! The motionless-swimmer alarm: a confirmed swimmer who stays within a small distance of one spot for
//! `warn_s` raises a warning, for `alarm_s` an alarm; moving away clears it. Kept per spot, not only per
//! track ID, so a track that breaks and resumes where it was keeps its time (a still body is where
//! detection flickers most), and an alarm whose swimmer is no longer seen stays raised at its place for
//! `gone_s` before it clears. An aid to lifeguards, not a certified drowning-detection system.

use crate::util::setting::{AboveUpTo, SettingError, in_range};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmSettings {
    /// Off: no warnings or alarms at all.
    pub enabled: bool,
    /// Seconds still before a warning.
    pub warn_s: f64,
    /// Seconds still before an alarm (at least `warn_s`).
    pub alarm_s: f64,
    /// Still means within this many metres of where the stillness began (with `[lanes]`; the box's
    /// centre jitters with the strokes by about half a metre).
    pub still_m: f64,
    /// Without `[lanes]`: within this share of the frame's diagonal.
    pub still_frac: f64,
    /// A raised alarm or warning whose swimmer is no longer seen anywhere near clears after this long
    /// (seconds); until then a swimmer seen again at its place takes it over.
    pub gone_s: f64,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        AlarmSettings { enabled: true, warn_s: 5.0, alarm_s: 10.0, still_m: 1.0, still_frac: 0.03, gone_s: 30.0 }
    }
}

impl AlarmSettings {
    /// Every key in its range (keys as the `[alarm]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        in_range("warn_s", self.warn_s, AboveUpTo(0.0, 3600.0))?;
        in_range("alarm_s", self.alarm_s, AboveUpTo(0.0, 3600.0))?;
        if self.alarm_s < self.warn_s {
            return Err(SettingError::new("alarm_s", format!("must be at least warn_s ({})", self.warn_s)));
        }
        in_range("still_m", self.still_m, AboveUpTo(0.0, 25.0))?;
        in_range("still_frac", self.still_frac, AboveUpTo(0.0, 0.5))?;
        in_range("gone_s", self.gone_s, 0.0..=3600.0)?;
        Ok(())
    }
}

/// How serious.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Clear,
    Warning,
    Alarm,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Clear => "clear",
            Level::Warning => "warning",
            Level::Alarm => "alarm",
        }
    }
}

/// Why a warning or alarm ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClearReason {
    /// The swimmer moved away.
    Moved,
    /// Nobody seen at the spot for `gone_s`.
    Gone,
    /// Its zone was switched off, or the alarm was turned off.
    Off,
}

/// Where a swimmer is this frame, as the alarm sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sighting {
    pub track: u64,
    /// Seen in this frame (a track the tracker keeps through a miss is not a new sighting).
    pub seen: bool,
    /// The box (pixels) and, with `[lanes]`, the position in the pool (metres: across, along).
    pub bbox: [f32; 4],
    pub pool_m: Option<[f64; 2]>,
    pub lane: Option<u32>,
    /// In a zone switched off: no warnings or alarms there.
    pub muted: bool,
}

/// A change of a spot's level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmEvent {
    pub state: Level,
    /// The swimmer's track (the last one seen at the spot).
    pub track: u64,
    /// When (the frames' clock, seconds).
    pub ts: f64,
    /// Seconds the swimmer had been still.
    pub still_s: f64,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
    /// Metres from the start wall (with `[lanes]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ClearReason>,
}

#[derive(Clone, Debug)]
struct Spot {
    track: u64,
    /// Where and when the stillness began.
    anchor: [f64; 2],
    since: f64,
    last_seen: f64,
    level: Level,
    bbox: [f32; 4],
    pool_m: Option<[f64; 2]>,
    lane: Option<u32>,
}

/// Watches the swimmers for stillness, frame by frame.
pub struct Alarms {
    settings: AlarmSettings,
    /// Where swimmers are or were lately, with how long they have been still there.
    spots: Vec<Spot>,
    /// The tracks of the current frame (kept between frames, not allocated for each).
    live: Vec<u64>,
}

/// A track ended without a warning, found again here within this long, keeps its stillness time.
const REJOIN_S: f64 = 3.0;

impl Alarms {
    pub fn new(settings: AlarmSettings) -> Alarms {
        Alarms { settings, spots: Vec::new(), live: Vec::new() }
    }

    pub fn set_settings(&mut self, settings: AlarmSettings) {
        self.settings = settings;
    }

    /// The warnings and alarms raised now.
    pub fn active(&self) -> impl Iterator<Item = AlarmEvent> + '_ {
        self.spots.iter().filter(|s| s.level > Level::Clear).map(|s| event(s, s.level, s.last_seen, None))
    }

    /// The highest level raised now.
    pub fn level(&self) -> Level {
        self.spots.iter().map(|s| s.level).max().unwrap_or(Level::Clear)
    }

    /// One frame at time `t` (seconds): the swimmers the tracker keeps, and the frame's size (for the
    /// still radius without lanes). Returns the levels that changed.
    pub fn update(&mut self, t: f64, frame: (u32, u32), at: &[Sighting]) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        if !self.settings.enabled {
            for s in self.spots.drain(..).filter(|s| s.level > Level::Clear) {
                out.push(event(&s, Level::Clear, t, Some(ClearReason::Off)));
            }
            return out;
        }
        let diag = (frame.0 as f64).hypot(frame.1 as f64);
        let mut live = std::mem::take(&mut self.live);
        live.clear();
        live.extend(at.iter().map(|s| s.track));
        for s in at.iter().filter(|s| s.seen) {
            let (pos, radius) = position(s, &self.settings, diag);
            let found = self.spots.iter().position(|p| p.track == s.track).or_else(|| {
                // A spot whose track has ended, here, not long ago: the same swimmer found again.
                self.spots
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !live.contains(&p.track) && p.pool_m.is_some() == s.pool_m.is_some())
                    .filter(|(_, p)| dist(p.anchor, pos) <= radius)
                    .filter(|(_, p)| t - p.last_seen <= if p.level > Level::Clear { self.settings.gone_s } else { REJOIN_S })
                    .max_by_key(|(_, p)| p.level)
                    .map(|(i, _)| i)
            });
            let spot = match found {
                Some(i) => &mut self.spots[i],
                None => {
                    self.spots.push(Spot { track: s.track, anchor: pos, since: t, last_seen: t, level: Level::Clear, bbox: s.bbox, pool_m: s.pool_m, lane: s.lane });
                    self.spots.last_mut().expect("just pushed")
                }
            };
            spot.track = s.track;
            spot.bbox = s.bbox;
            spot.pool_m = s.pool_m;
            spot.lane = s.lane;
            spot.last_seen = t;
            if s.muted || dist(spot.anchor, pos) > radius {
                if spot.level > Level::Clear {
                    out.push(event(spot, Level::Clear, t, Some(if s.muted { ClearReason::Off } else { ClearReason::Moved })));
                }
                spot.anchor = pos;
                spot.since = t;
                spot.level = Level::Clear;
                continue;
            }
            // (A hair over, so 25 frames a second reach a whole number of seconds on its frame.)
            let still = t - spot.since + 1e-9;
            let level = if still >= self.settings.alarm_s {
                Level::Alarm
            } else if still >= self.settings.warn_s {
                Level::Warning
            } else {
                Level::Clear
            };
            // Every level on the way is said, so a warning always comes before its alarm (a frame
            // rate under one every alarm_s - warn_s would jump).
            for step in [Level::Warning, Level::Alarm] {
                if level >= step && spot.level < step {
                    spot.level = step;
                    out.push(event(spot, step, t, None));
                }
            }
        }
        // Spots nobody is at any more.
        let settings = &self.settings;
        self.spots.retain(|p| {
            let unseen = t - p.last_seen;
            if live.contains(&p.track) && unseen <= settings.gone_s {
                return true;
            }
            if p.level > Level::Clear {
                if unseen > settings.gone_s {
                    out.push(event(p, Level::Clear, t, Some(ClearReason::Gone)));
                    return false;
                }
                return true;
            }
            unseen <= REJOIN_S
        });
        self.live = live;
        out
    }
}

/// A sighting's position and the still radius, in the same units.
fn position(s: &Sighting, settings: &AlarmSettings, diag: f64) -> ([f64; 2], f64) {
    match s.pool_m {
        Some(p) => (p, settings.still_m),
        None => (centre(&s.bbox), settings.still_frac * diag),
    }
}

fn centre(b: &[f32; 4]) -> [f64; 2] {
    [((b[0] + b[2]) / 2.0) as f64, ((b[1] + b[3]) / 2.0) as f64]
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn event(s: &Spot, state: Level, ts: f64, reason: Option<ClearReason>) -> AlarmEvent {
    AlarmEvent {
        state,
        track: s.track,
        ts,
        still_s: (ts - s.since).max(0.0),
        bbox: s.bbox,
        lane: s.lane,
        distance_m: s.pool_m.map(|p| p[1]),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(track: u64, along: f64) -> Sighting {
        Sighting { track, seen: true, bbox: [0.0, 0.0, 10.0, 10.0], pool_m: Some([1.25, along]), lane: Some(1), muted: false }
    }

    /// Runs `f(t)` (the sightings at t) at 25 fps from 0 to `until` s; the events.
    fn run(alarms: &mut Alarms, until: f64, f: impl Fn(f64) -> Vec<Sighting>) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        for i in 0..=(until * 25.0).round() as u64 {
            let t = i as f64 / 25.0;
            out.extend(alarms.update(t, (640, 480), &f(t)));
        }
        out
    }

    fn states(e: &[AlarmEvent]) -> Vec<(Level, f64)> {
        e.iter().map(|e| (e.state, (e.ts * 100.0).round() / 100.0)).collect()
    }

    #[test]
    fn a_swimmer_who_stops_is_warned_then_alarmed_and_cleared_on_moving() {
        let mut a = Alarms::new(AlarmSettings::default());
        // Swims at 1.5 m/s for 10 s, stops (jitter of 0.3 m) for 20 s, swims on.
        let e = run(&mut a, 40.0, |t| {
            let along = if t < 10.0 { 1.5 * t } else if t < 30.0 { 15.0 + 0.3 * (t * 3.0).sin() } else { 15.0 + 1.5 * (t - 30.0) };
            vec![at(7, along)]
        });
        let s = states(&e);
        assert_eq!(s.iter().map(|s| s.0).collect::<Vec<_>>(), [Level::Warning, Level::Alarm, Level::Clear], "{s:?}");
        // Stillness begins with the last sighting more than a metre from where it was counted from:
        // just before the stop, or once more as the jitter first reaches its far side (under a second).
        assert!((14.3..=16.1).contains(&s[0].1) && (19.3..=21.1).contains(&s[1].1) && (s[1].1 - s[0].1 - 5.0).abs() < 1e-6, "{s:?}");
        assert!((30.0..=31.0).contains(&s[2].1) && e[2].reason == Some(ClearReason::Moved), "{e:?}");
        assert_eq!(e[1].distance_m.map(|d| d.round()), Some(15.0));
        assert_eq!(a.level(), Level::Clear);
    }

    #[test]
    fn a_slow_frame_rate_still_warns_before_it_alarms() {
        let mut a = Alarms::new(AlarmSettings::default());
        // One frame every 6 s: still 0, 6 (warning), 12 (alarm)... and one every 11 s: both at once.
        let mut e = Vec::new();
        for t in [0.0, 6.0, 12.0] {
            e.extend(a.update(t, (640, 480), &[at(1, 10.0)]));
        }
        assert_eq!(states(&e), [(Level::Warning, 6.0), (Level::Alarm, 12.0)]);
        let mut a = Alarms::new(AlarmSettings::default());
        let mut e = Vec::new();
        for t in [0.0, 11.0] {
            e.extend(a.update(t, (640, 480), &[at(1, 10.0)]));
        }
        assert_eq!(states(&e), [(Level::Warning, 11.0), (Level::Alarm, 11.0)]);
    }

    #[test]
    fn swimming_never_raises_anything() {
        let mut a = Alarms::new(AlarmSettings::default());
        // Two swimmers, 1.1 m/s, bouncing between walls 1 m from each end of a 25 m pool.
        let e = run(&mut a, 600.0, |t| {
            let p = (1.1 * t).rem_euclid(46.0);
            let along = if p < 23.0 { 1.0 + p } else { 47.0 - p };
            vec![at(1, along), at(2, 24.0 - along + 1.0)]
        });
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn a_broken_track_keeps_its_time_and_an_unseen_alarm_waits_before_clearing() {
        let mut a = Alarms::new(AlarmSettings { gone_s: 5.0, ..AlarmSettings::default() });
        // Still from the start; track 1 for 4 s, nothing for 1 s, track 2 at the same place.
        let e = run(&mut a, 20.0, |t| match t {
            t if t < 4.0 => vec![at(1, 10.0)],
            t if t < 5.0 => vec![],
            t if t < 12.0 => vec![at(2, 10.2)],
            _ => vec![],
        });
        let s = states(&e);
        // Warning at 5 s and alarm at 10 s of the first sighting, despite the new track ID; gone 5 s
        // after the last sighting.
        assert_eq!(s.iter().map(|s| s.0).collect::<Vec<_>>(), [Level::Warning, Level::Alarm, Level::Clear], "{s:?}");
        assert_eq!((s[0].1, s[1].1), (5.0, 10.0));
        assert_eq!(e[1].track, 2);
        assert!(e[2].reason == Some(ClearReason::Gone) && (16.9..17.1).contains(&s[2].1), "{e:?}");
    }

    #[test]
    fn a_swimmer_passing_an_ended_track_does_not_take_its_time() {
        let mut a = Alarms::new(AlarmSettings::default());
        // Track 1 still at 10 m for 4 s then gone; 4 s later (past REJOIN_S) track 2 stays there.
        let e = run(&mut a, 14.0, |t| match t {
            t if t < 4.0 => vec![at(1, 10.0)],
            t if t < 8.0 => vec![],
            _ => vec![at(2, 10.0)],
        });
        assert_eq!(states(&e), [(Level::Warning, 13.0)]);
    }

    #[test]
    fn muted_and_off_raise_nothing_and_switching_off_clears() {
        let mut a = Alarms::new(AlarmSettings::default());
        let e = run(&mut a, 15.0, |_| vec![Sighting { muted: true, ..at(1, 10.0) }]);
        assert!(e.is_empty(), "{e:?}");
        let mut a = Alarms::new(AlarmSettings::default());
        let e = run(&mut a, 11.0, |_| vec![at(1, 10.0)]);
        assert_eq!(e.len(), 2);
        assert_eq!(a.active().count(), 1);
        a.set_settings(AlarmSettings { enabled: false, ..AlarmSettings::default() });
        let e = a.update(11.1, (640, 480), &[at(1, 10.0)]);
        assert!(e.len() == 1 && e[0].state == Level::Clear && e[0].reason == Some(ClearReason::Off), "{e:?}");
        assert_eq!(a.level(), Level::Clear);
    }

    #[test]
    fn without_lanes_stillness_is_measured_in_pixels() {
        let mut a = Alarms::new(AlarmSettings::default());
        // 3 % of 800 px (the diagonal of 640x480) is 24 px: a box wobbling 10 px is still.
        let e = run(&mut a, 11.0, |t| {
            let x = 100.0 + 10.0 * (t as f32).sin();
            vec![Sighting { track: 1, seen: true, bbox: [x, 50.0, x + 20.0, 70.0], pool_m: None, lane: None, muted: false }]
        });
        assert_eq!(states(&e), [(Level::Warning, 5.0), (Level::Alarm, 10.0)]);
        assert!(e[0].distance_m.is_none());
    }

    #[test]
    fn settings_are_checked() {
        assert!(AlarmSettings::default().validate().is_ok());
        let e = AlarmSettings { warn_s: 12.0, ..AlarmSettings::default() }.validate().unwrap_err();
        assert!(e.to_string().contains("alarm_s"), "{e}");
        assert!(AlarmSettings { still_m: 0.0, ..AlarmSettings::default() }.validate().is_err());
    }
}
