//! Lap timing from tracked swimmers: per lane, wall turns (the direction reverses near a wall), lengths
//! swum, length and total times and pace. Kept per lane, not per track ID, so a track that breaks and
//! resumes in its lane keeps counting.
//!
//! A *lap* here is one length of the pool, wall to wall, as touch pads and lap counters count them. The
//! first touch of a lane starts its session (lap 0); each touch at the other wall ends a lap. A turn is
//! seen once the swimmer has moved `reverse_m` back from the farthest point reached, so its touch time
//! is that point's, not the moment it was recognised. A turn out of sight is placed where the head's
//! paths before and after it meet. A swimmer who stops at a wall (the end of a swim) touches when they
//! have not gone further for `finish_s` (out of sight, for `finish_s` more than a hidden turn takes).

use crate::pipeline::lanes::LaneMap;
use crate::util::setting::{AboveUpTo, SettingError, in_range};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimingSettings {
    /// A turn this close to a wall (metres, measured at the swimmer's box centre) is a touch.
    pub wall_m: f64,
    /// How far (metres) the swimmer must come back from the farthest point before it is a turn:
    /// larger ignores more jitter of the box, and recognises a turn later (its time does not change).
    pub reverse_m: f64,
    /// Seconds without going further, near the wall ahead, that make a finishing touch.
    pub finish_s: f64,
    /// A lane nobody has been seen in for this long (seconds) ends its session, counted after the
    /// time a turn hidden at the wall ahead would keep its swimmer away.
    pub reset_s: f64,
    /// Lengths faster than this (seconds) are not believed (a box that jumped across the pool).
    pub min_length_s: f64,
}

impl Default for TimingSettings {
    fn default() -> Self {
        TimingSettings { wall_m: 3.0, reverse_m: 1.0, finish_s: 3.0, reset_s: 30.0, min_length_s: 8.0 }
    }
}

impl TimingSettings {
    /// Every key in its range (keys as the `[timing]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        in_range("wall_m", self.wall_m, AboveUpTo(0.0, 25.0))?;
        in_range("reverse_m", self.reverse_m, AboveUpTo(0.0, 10.0))?;
        in_range("finish_s", self.finish_s, AboveUpTo(0.0, 600.0))?;
        in_range("reset_s", self.reset_s, AboveUpTo(0.0, 86_400.0))?;
        in_range("min_length_s", self.min_length_s, 0.0..=600.0)?;
        Ok(())
    }
}

/// Which end of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Wall {
    /// The start wall (distance 0).
    Start,
    /// The far wall (distance = the pool's length).
    Far,
}

impl Wall {
    pub fn as_str(self) -> &'static str {
        match self {
            Wall::Start => "start",
            Wall::Far => "far",
        }
    }
}

/// One length swum.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lap {
    pub lane: u32,
    /// Lengths completed in this lane's session, 1 for the first.
    pub lap: u32,
    /// The touch that ended it: time (seconds, the frames' clock) and wall.
    pub ts: f64,
    pub wall: Wall,
    /// Seconds for this length.
    pub lap_s: f64,
    /// Seconds since the session's first touch.
    pub total_s: f64,
    /// This length's pace, seconds per 100 m.
    pub pace_s_100m: f64,
    /// The track whose turn it was.
    pub track: u64,
}

/// Where one swimmer is this frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LanePosition {
    pub lane: u32,
    /// Metres from the start wall (the box's centre).
    pub distance_m: f64,
    pub track: u64,
    /// The box's length along the lane (metres), when the whole box is in the picture (a box cut at
    /// the picture's edge is shorter than the swimmer).
    pub length_m: Option<f64>,
}

impl LanePosition {
    pub fn at(lane: u32, distance_m: f64, track: u64) -> LanePosition {
        LanePosition { lane, distance_m, track, length_m: None }
    }

    /// A tracked box in a picture of `size` pixels: its lane and centre through `map`, and its length
    /// unless it touches the picture's edge; `None` outside the pool.
    pub fn of_box(map: &LaneMap, b: &[f32; 4], size: (u32, u32), track: u64) -> Option<LanePosition> {
        let p = map.locate_box(b)?;
        let (w, h) = (size.0 as f32, size.1 as f32);
        let whole = b[0] > 1.0 && b[1] > 1.0 && b[2] < w - 1.0 && b[3] < h - 1.0;
        Some(LanePosition { lane: p.lane, distance_m: p.distance_m, track, length_m: whole.then(|| map.extent_along(b)) })
    }
}

/// How far the head is ahead of the box's centre, as a fraction of the box's length: the box runs from
/// the feet to the hands reaching forward, and the head is about a sixth of the box behind its leading
/// end.
const HEAD_AHEAD: f64 = 0.33;

/// A box longer than this along the lane (metres) is not one swimmer's body (two merged, or a wake):
/// its length is not taken for the swimmer's. A swimmer reaching forward is about 2.5 m.
const MAX_BODY_M: f64 = 3.5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Unknown,
    /// Away from the start wall.
    Out,
    /// Towards the start wall.
    Back,
}

/// Samples further apart than this are a gap (the swimmer out of sight, or its track broken).
const GAP_S: f64 = 0.2;

/// A run in one direction this long gives the swimming speed.
const RUN_S: f64 = 2.0;

#[derive(Clone, Debug)]
struct Pending {
    /// The farthest point before the gap: time, distance, track.
    before: (f64, f64, u64),
    dir: Dir,
    speed: f64,
    /// The head's distance ahead of the box's centre (metres), 0 when the box's length is unknown.
    head_m: f64,
    /// The first sample after it.
    seen: (f64, LanePosition),
}

#[derive(Clone, Debug)]
struct LaneState {
    dir: Dir,
    /// The farthest point in the current direction (or, while it is unknown, the first seen): time,
    /// distance, track.
    extreme: (f64, f64, u64),
    last_seen: f64,
    /// The last sample (time, distance, direction) and the swimming speed (m/s), to place a turn that
    /// happened out of sight.
    prev: (f64, f64, Dir),
    speed: f64,
    /// Where and when the current direction's run began: the speed is its average once it is
    /// `RUN_S` long (a frame-to-frame speed is mostly the box's jitter, and slows where the box is cut
    /// at the picture's edge, just before a turn out of sight).
    run: Option<(f64, f64)>,
    /// The swimmer's box length along the lane (metres, smoothed over the frames it was whole).
    body_m: Option<f64>,
    /// After a gap: what was known before it, until the direction is known again.
    pending: Option<Pending>,
    /// Session start (the first touch) and the last touch.
    first_touch: Option<f64>,
    last_touch: Option<(f64, Wall)>,
    laps: u32,
}

/// Counts lengths per lane from the swimmers' positions, one [`update`](Self::update) per frame.
pub struct LapTimer {
    settings: TimingSettings,
    length_m: f64,
    lanes: Vec<Option<LaneState>>,
}

impl LapTimer {
    pub fn new(settings: TimingSettings, lanes: u32, length_m: f64) -> LapTimer {
        LapTimer { settings, length_m, lanes: vec![None; lanes as usize] }
    }

    pub fn set_settings(&mut self, settings: TimingSettings) {
        self.settings = settings;
    }

    /// Lengths completed in each lane's current session (lane 1 first).
    pub fn laps(&self) -> Vec<u32> {
        self.lanes.iter().map(|l| l.as_ref().map_or(0, |l| l.laps)).collect()
    }

    /// This frame (time `ts`, seconds) with the swimmers in lanes; returns the lengths completed.
    pub fn update(&mut self, ts: f64, positions: &[LanePosition]) -> Vec<Lap> {
        let mut out = Vec::new();
        for lane in 1..=self.lanes.len() as u32 {
            let idx = lane as usize - 1;
            // The swimmer of the lane: the one nearest where the lane's swimmer was (several in one lane
            // swim in circles; the nearest keeps following one of them).
            let near = self.lanes[idx].as_ref().map(|s| s.extreme.1);
            let here = positions
                .iter()
                .filter(|p| p.lane == lane && p.distance_m.is_finite())
                .min_by(|a, b| {
                    let d = |p: &LanePosition| near.map_or(0.0, |n| (p.distance_m - n).abs());
                    d(a).total_cmp(&d(b))
                })
                .copied();
            if let Some(lap) = self.step(idx, ts, here) {
                out.push(lap);
            }
        }
        out
    }

    fn wall_at(&self, d: f64) -> Option<Wall> {
        if d <= self.settings.wall_m {
            Some(Wall::Start)
        } else if d >= self.length_m - self.settings.wall_m {
            Some(Wall::Far)
        } else {
            None
        }
    }

    fn step(&mut self, idx: usize, ts: f64, here: Option<LanePosition>) -> Option<Lap> {
        let s = self.settings.clone();
        let Some(state) = &mut self.lanes[idx] else {
            let p = here?;
            self.lanes[idx] = Some(LaneState {
                dir: Dir::Unknown,
                extreme: (ts, p.distance_m, p.track),
                last_seen: ts,
                prev: (ts, p.distance_m, Dir::Unknown),
                speed: 0.0,
                run: None,
                body_m: p.length_m,
                pending: None,
                first_touch: None,
                last_touch: None,
                laps: 0,
            });
            return None;
        };
        let Some(p) = here else {
            // Out of sight for `reset_s` more than a turn hidden at the wall ahead takes: gone. (A camera
            // that sees a part of a 50 m lane loses a slow swimmer for 40 s at each turn.)
            if ts - state.last_seen > s.reset_s + Self::hidden_turn_s(state, self.length_m) {
                self.lanes[idx] = None;
                return None;
            }
            // Gone from view at the wall ahead (climbed out, or hidden there): a finishing touch, once
            // out of sight for longer than a turn hidden there would keep it (`finish`).
            return self.finish(idx, ts, false);
        };
        state.last_seen = ts;
        if let Some(len) = p.length_m.filter(|l| *l > 0.0 && *l <= MAX_BODY_M) {
            state.body_m = Some(state.body_m.map_or(len, |b| 0.95 * b + 0.05 * len));
        }
        let d = p.distance_m;
        let (pt, pd, pdir) = std::mem::replace(&mut state.prev, (ts, d, state.dir));
        let dt = ts - pt;
        if state.dir != Dir::Unknown && pdir == state.dir && dt > 0.0 && dt < GAP_S {
            let v = ((d - pd).abs() / dt).min(4.0);
            state.speed = match state.run {
                Some((t0, d0)) if state.extreme.0 - t0 >= RUN_S => ((state.extreme.1 - d0).abs() / (state.extreme.0 - t0)).min(4.0),
                _ if state.speed == 0.0 => v,
                _ => 0.9 * state.speed + 0.1 * v,
            };
        }
        // Out of sight again before its direction was known (seen only briefly, near a wall): what is
        // known after this gap replaces what was seen before it, so a turn hidden in either gap is
        // placed from the last approach and this departure.
        if state.dir == Dir::Unknown && dt >= GAP_S {
            if let Some(pending) = &mut state.pending {
                pending.seen = (ts, p);
            }
            state.extreme = (ts, p.distance_m, p.track);
            return None;
        }
        // Seen again after a while out of sight (or after its track broke): which way it goes now is
        // found again before anything is decided.
        if state.dir != Dir::Unknown && dt >= GAP_S {
            let head_m = state.body_m.map_or(0.0, |b| HEAD_AHEAD * b);
            state.pending = Some(Pending { before: state.extreme, dir: state.dir, speed: state.speed, head_m, seen: (ts, p) });
            state.dir = Dir::Unknown;
            state.extreme = (ts, p.distance_m, p.track);
            return None;
        }
        let (_, ext, _) = state.extreme;
        match state.dir {
            Dir::Unknown => {
                if (p.distance_m - ext).abs() <= s.reverse_m {
                    return None;
                }
                let dir = if p.distance_m > ext { Dir::Out } else { Dir::Back };
                state.dir = dir;
                state.run = Some((state.extreme.0, ext));
                state.extreme = (ts, p.distance_m, p.track);
                state.prev = (ts, p.distance_m, dir);
                match state.pending.take() {
                    Some(pending) if pending.dir != dir => {
                        let (t, at) = self.hidden_turn(&pending);
                        self.touch(idx, t, at, pending.before.2)
                    }
                    _ => None,
                }
            }
            dir => {
                let sign = if dir == Dir::Out { 1.0 } else { -1.0 };
                if sign * (d - ext) >= 0.0 {
                    state.extreme = (ts, d, p.track);
                    self.finish(idx, ts, true)
                } else if (d - ext).abs() > s.reverse_m {
                    let (t, at, track) = state.extreme;
                    let back = if dir == Dir::Out { Dir::Back } else { Dir::Out };
                    state.dir = back;
                    state.run = Some((ts, p.distance_m));
                    state.extreme = (ts, p.distance_m, p.track);
                    state.prev = (ts, p.distance_m, back);
                    self.touch(idx, t, at, track)
                } else {
                    self.finish(idx, ts, true)
                }
            }
        }
    }

    /// A turn out of sight, between the farthest point seen before (`pending.before`) and the swimmer
    /// seen again going the other way (`pending.seen`): at the swimming speed it went on, turned and
    /// came back within the gap, so the turning point is where the two paths meet and its time
    /// follows. The paths are the head's: the box's centre trails the head both ways, and its paths
    /// meet later by the time it takes to swim that distance (0.3-0.5 s); the head
    /// is placed ahead of the centre by the swimmer's length measured while its box was whole (the
    /// box's leading end itself is cut at the picture's edge, where turns go out of sight).
    fn hidden_turn(&self, pending: &Pending) -> (f64, f64) {
        let (t1, d1, _) = pending.before;
        let (t2, p2) = pending.seen;
        let v = pending.speed;
        if v < 0.3 {
            return (t1, d1);
        }
        // The head: ahead of the centre in the direction swum, before the turn and after it.
        let ahead = if pending.dir == Dir::Out { pending.head_m } else { -pending.head_m };
        let (d1, d2) = (d1 + ahead, p2.distance_m - ahead);
        let gap = t2 - t1;
        let peak = if pending.dir == Dir::Out { (d1 + d2 + v * gap) / 2.0 } else { (d1 + d2 - v * gap) / 2.0 };
        let peak = peak.clamp(0.0, self.length_m);
        ((t1 + (peak - d1).abs() / v).min(t2), peak)
    }

    /// How long a turn at the wall ahead, out of sight, keeps a swimmer away: from the farthest point
    /// seen to the wall and back at the swimming speed (0 while the direction or speed is unknown).
    fn hidden_turn_s(state: &LaneState, length_m: f64) -> f64 {
        let at = state.extreme.1;
        match state.dir {
            _ if state.speed < 0.3 => 0.0,
            Dir::Unknown => 0.0,
            Dir::Out => 2.0 * (length_m - at).max(0.0) / state.speed,
            Dir::Back => 2.0 * at.max(0.0) / state.speed,
        }
    }

    /// A swimmer that has gone no further for `finish_s` near the wall ahead has touched it. Out of
    /// sight (not `seen` this frame), it may be turning there unseen: it has finished only once it has
    /// been away for `finish_s` more than the swim to the wall and back from where it was last seen.
    fn finish(&mut self, idx: usize, ts: f64, seen: bool) -> Option<Lap> {
        let state = self.lanes[idx].as_ref()?;
        let (t, at, track) = state.extreme;
        let ahead = match state.dir {
            Dir::Out => Wall::Far,
            _ => Wall::Start,
        };
        let hidden_turn_s = if seen { 0.0 } else { Self::hidden_turn_s(state, self.length_m) };
        // In sight: since the farthest point; out of sight: since the last sighting, less the turn.
        let waited = if seen { ts - t } else { ts - state.last_seen - hidden_turn_s };
        if state.dir == Dir::Unknown || ts - t < self.settings.finish_s || waited < self.settings.finish_s {
            return None;
        }
        if self.wall_at(at) != Some(ahead) {
            return None;
        }
        // Waiting for the next push-off, whichever way it goes.
        if let Some(st) = &mut self.lanes[idx] {
            st.dir = Dir::Unknown;
        }
        self.touch(idx, t, at, track)
    }

    /// A touch at distance `at`, time `t`: the session's start, or the end of a length.
    fn touch(&mut self, idx: usize, t: f64, at: f64, track: u64) -> Option<Lap> {
        let wall = self.wall_at(at)?;
        let (length_m, min_length_s) = (self.length_m, self.settings.min_length_s);
        let state = self.lanes[idx].as_mut()?;
        let Some((last_t, last_wall)) = state.last_touch else {
            state.first_touch = Some(t);
            state.last_touch = Some((t, wall));
            return None;
        };
        // Back at the same wall without a length between (a turn seen twice), or a length faster than
        // anyone swims: not a lap.
        if wall == last_wall || t - last_t < min_length_s {
            return None;
        }
        state.laps += 1;
        state.last_touch = Some((t, wall));
        let lap_s = t - last_t;
        Some(Lap {
            lane: idx as u32 + 1,
            lap: state.laps,
            ts: t,
            wall,
            lap_s,
            total_s: t - state.first_touch.unwrap_or(t),
            pace_s_100m: lap_s / length_m * 100.0,
            track,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A swimmer going back and forth in a 25 m pool at 1.25 m/s between 1 m and 24 m (box centres),
    /// sampled at 25 frames a second, with `jitter` metres of noise.
    fn swim(seconds: f64, jitter: f64) -> Vec<(f64, f64)> {
        let mut rng = crate::util::rng::Rng::new(3);
        let (lo, hi, v) = (1.0, 24.0, 1.25);
        let span = hi - lo;
        (0..(seconds * 25.0) as usize)
            .map(|i| {
                let t = i as f64 / 25.0;
                let p = (5.0 + v * t) % (2.0 * span);
                let d = if p < span { lo + p } else { hi - (p - span) };
                (t, d + jitter * rng.range(-1.0, 1.0) as f64)
            })
            .collect()
    }

    fn run(timer: &mut LapTimer, track: &[(f64, f64)], lane: u32) -> Vec<Lap> {
        let mut laps = Vec::new();
        for &(t, d) in track {
            laps.extend(timer.update(t, &[LanePosition::at(lane, d, 1)]));
        }
        laps
    }

    #[test]
    fn a_turn_hidden_around_a_brief_sighting_is_placed_from_the_approach_and_the_departure() {
        // Towards the start wall at 1.5 m/s, turning at 10 s (1 m), seen only from 4.5 m out but for
        // 0.5 s on the approach (4 m to 3.25 m), with no direction known then; the swimming before sets
        // the speed (a slower one, as the box is cut at the picture's edge, used to miss this turn).
        let d = |t: f64| 1.0 + 1.5 * (t - 10.0).abs();
        let mut timer = LapTimer::new(TimingSettings::default(), 8, 25.0);
        for i in 0..(20.0 * 25.0) as usize {
            let t = i as f64 / 25.0;
            let seen = d(t) >= 4.5 || (8.0..8.5).contains(&t);
            let at: Vec<LanePosition> = if seen { vec![LanePosition::at(2, d(t), 1)] } else { vec![] };
            timer.update(t, &at);
        }
        let first = timer.lanes[1].as_ref().and_then(|s| s.first_touch).expect("the turn was seen");
        assert!((first - 10.0).abs() < 0.3, "placed at {first}");
    }

    #[test]
    fn a_hidden_turn_is_placed_at_the_head_not_at_the_box_centre() {
        // A swimmer 2.4 m long (box) whose box centre trails its head by 0.8 m, out to the far wall of
        // a 25 m pool at 1.5 m/s, the head turning 1 m from it at 10 s; out of sight within 4 m of that
        // wall. Placed from the centres alone the turn comes out 0.8 m / 1.5 m/s late; knowing the
        // swimmer's length (measured while whole), at the head's turn.
        let head = |t: f64| 24.0 - 1.5 * (t - 10.0).abs();
        let centre = |t: f64| head(t) - if t < 10.0 { 0.8 } else { -0.8 };
        let first_touch = |length_m: Option<f64>| {
            let mut timer = LapTimer::new(TimingSettings::default(), 8, 25.0);
            for i in 0..(20.0 * 25.0) as usize {
                let t = i as f64 / 25.0;
                let seen = centre(t) <= 21.0;
                let at: Vec<LanePosition> = if seen { vec![LanePosition { length_m, ..LanePosition::at(4, centre(t), 1) }] } else { vec![] };
                timer.update(t, &at);
            }
            timer.lanes[3].as_ref().and_then(|s| s.first_touch).expect("the turn was seen")
        };
        let late = first_touch(None) - 10.0;
        assert!((late - 0.8 / 1.5).abs() < 0.1, "without the length: {late:+.2} s");
        let at_head = first_touch(Some(2.4)) - 10.0;
        assert!(at_head.abs() < 0.1, "with the length: {at_head:+.2} s");
    }

    #[test]
    fn a_swimmer_out_of_sight_at_the_wall_for_longer_than_finish_s_is_turning_not_finishing() {
        // At 0.8 m/s towards the start wall, out of sight within 2.5 m of it (3.75 s hidden: longer
        // than `finish_s`), the head turning 1 m from the wall at 10 s; a swimmer who never comes back
        // (climbed out) finishes there once away for longer than such a turn.
        let d = |t: f64| 1.0 + 0.8 * (t - 10.0).abs();
        let run = |back: bool| {
            let mut timer = LapTimer::new(TimingSettings::default(), 8, 25.0);
            let mut first = Vec::new();
            for i in 0..(25.0 * 25.0) as usize {
                let t = i as f64 / 25.0;
                let seen = d(t) > 2.5 && (back || t < 10.0);
                let at: Vec<LanePosition> = if seen { vec![LanePosition::at(1, d(t), 1)] } else { vec![] };
                timer.update(t, &at);
                if let Some(f) = timer.lanes[0].as_ref().and_then(|s| s.first_touch) {
                    first.push((t, f));
                }
            }
            first.first().copied()
        };
        let (_, turn) = run(true).expect("the turn was seen");
        assert!((turn - 10.0).abs() < 0.2, "placed at {turn}");
        // Gone at 2.5 m (8.125 s): the touch is put where it was last seen, after finish_s (3 s) and
        // the swim to the wall and back (2 x 2.5 m / 0.8 m/s): from 17.4 s on.
        let (when, touch) = run(false).expect("a finishing touch");
        assert!((touch - 8.125).abs() < 0.1 && (when - 17.375).abs() < 0.2, "{touch} at {when}");
    }

    #[test]
    fn a_swimmer_who_stops_at_the_wall_in_sight_has_touched_it() {
        // Towards the start wall at 1 m/s from 12 m, there (1 m) at 11 s, then resting in sight, its box
        // jittering a little.
        let mut timer = LapTimer::new(TimingSettings::default(), 4, 25.0);
        for i in 0..(16.0 * 25.0) as usize {
            let t = i as f64 / 25.0;
            let d = if t <= 11.0 { 12.0 - t } else { 1.0 + 0.01 * (1 + i % 3) as f64 };
            timer.update(t, &[LanePosition::at(2, d, 1)]);
        }
        let first = timer.lanes[1].as_ref().and_then(|s| s.first_touch).expect("a finishing touch in sight");
        assert!((first - 11.0).abs() < 0.1, "at {first}");
    }

    #[test]
    fn a_box_cut_at_the_pictures_edge_has_no_length() {
        let map = LaneMap::new(&crate::pipeline::lanes::LaneSettings { corners: [[0.0, 480.0], [0.0, 0.0], [640.0, 0.0], [640.0, 480.0]], count: 8, length_m: 25.0 }).unwrap();
        // Lanes run across the picture: 25 m in 640 px, so a 64 px wide box is 2.5 m long.
        let p = LanePosition::of_box(&map, &[300.0, 100.0, 364.0, 120.0], (640, 480), 3).unwrap();
        assert_eq!((p.lane, p.track), (7, 3));
        assert!((p.distance_m - 332.0 / 640.0 * 25.0).abs() < 0.01 && (p.length_m.unwrap() - 2.5).abs() < 0.01, "{p:?}");
        let cut = LanePosition::of_box(&map, &[600.0, 100.0, 640.0, 120.0], (640, 480), 3).unwrap();
        assert_eq!(cut.length_m, None);
    }

    #[test]
    fn lengths_are_counted_at_each_wall_with_the_touch_time() {
        let mut timer = LapTimer::new(TimingSettings::default(), 8, 25.0);
        let laps = run(&mut timer, &swim(120.0, 0.15), 3);
        // Turns at 24 m: t = (18 + 46k) / 1.25; at 1 m: t = (41 + 46k) / 1.25. The first (14.4 s) starts
        // the session; each next one is a length of 18.4 s.
        let touches: Vec<f64> = (0..7).map(|k| (18.0 + 23.0 * k as f64) / 1.25).filter(|t| *t < 119.0).collect();
        assert_eq!(laps.len(), touches.len() - 1, "{laps:?}");
        for (i, lap) in laps.iter().enumerate() {
            assert_eq!((lap.lane, lap.lap), (3, i as u32 + 1));
            assert!((lap.ts - touches[i + 1]).abs() < 0.3, "touch {} at {} not {}", i + 1, lap.ts, touches[i + 1]);
            assert!((lap.lap_s - 18.4).abs() < 0.5, "{lap:?}");
            assert!((lap.total_s - (touches[i + 1] - touches[0])).abs() < 0.5);
            assert!((lap.pace_s_100m - 73.6).abs() < 2.0);
            assert_eq!(lap.wall, if i % 2 == 0 { Wall::Start } else { Wall::Far });
        }
        assert_eq!(timer.laps()[2], laps.len() as u32);
    }

    #[test]
    fn a_track_that_breaks_and_resumes_in_its_lane_keeps_counting() {
        let mut timer = LapTimer::new(TimingSettings::default(), 8, 25.0);
        let mut laps = Vec::new();
        for (i, &(t, d)) in swim(120.0, 0.0).iter().enumerate() {
            // Unseen for 2 s every 10 s, and a new track ID after every gap.
            let seen = (t % 10.0) < 8.0;
            let pos: Vec<LanePosition> = if seen { vec![LanePosition::at(5, d, 1 + (i / 250) as u64)] } else { vec![] };
            laps.extend(timer.update(t, &pos));
        }
        let mut whole = LapTimer::new(TimingSettings::default(), 8, 25.0);
        let all = run(&mut whole, &swim(120.0, 0.0), 5);
        // Gaps hide two turns (69.6 s and 88 s fall in them), not the lengths, and the hidden turns' times
        // come from the speed before them.
        assert_eq!(laps.len(), all.len(), "{laps:?}");
        for (a, b) in laps.iter().zip(&all) {
            assert_eq!((a.lap, a.wall), (b.lap, b.wall));
            assert!((a.ts - b.ts).abs() < 0.3, "{a:?} against {b:?}");
        }
    }

    #[test]
    fn a_swimmer_resting_at_the_wall_finishes_there_and_mid_pool_turns_are_not_touches() {
        let mut timer = LapTimer::new(TimingSettings::default(), 4, 25.0);
        let mut laps = Vec::new();
        let mut t = 0.0;
        let mut at = |d: f64, laps: &mut Vec<Lap>, timer: &mut LapTimer| {
            t += 0.04;
            laps.extend(timer.update(t, &[LanePosition::at(2, d, 7)]));
        };
        // From the start wall out to the far wall (touch 1: the session), back (touch 2: a length), out
        // half way, turn back mid-pool (no touch), back to the start wall and rest there 5 s.
        for i in 0..500 {
            at(1.0 + 23.0 * i as f64 / 500.0, &mut laps, &mut timer);
        }
        for i in 0..500 {
            at(24.0 - 23.0 * i as f64 / 500.0, &mut laps, &mut timer);
        }
        for i in 0..250 {
            at(1.0 + 11.5 * i as f64 / 250.0, &mut laps, &mut timer);
        }
        for i in 0..250 {
            at(12.5 - 11.5 * i as f64 / 250.0, &mut laps, &mut timer);
        }
        for _ in 0..125 {
            at(1.0, &mut laps, &mut timer);
        }
        assert_eq!(laps.iter().map(|l| (l.lap, l.wall)).collect::<Vec<_>>(), [(1, Wall::Start)], "{laps:?}");
        assert!((laps[0].lap_s - 20.0).abs() < 0.1);
        // The start wall was touched twice in a row (after the mid-pool turn): one length, not two.
        assert_eq!(timer.laps(), [0, 1, 0, 0]);
    }

    #[test]
    fn an_empty_lane_ends_its_session() {
        let mut timer = LapTimer::new(TimingSettings { reset_s: 5.0, ..TimingSettings::default() }, 2, 25.0);
        run(&mut timer, &swim(60.0, 0.0), 1);
        let laps = timer.laps()[0];
        assert!(laps > 0);
        // Last seen 13 m from the start wall swimming towards it at 1.25 m/s: for the 20.8 s a turn
        // there would take, and `reset_s` more, the session goes on.
        let mut t = 60.0;
        while t < 85.0 {
            timer.update(t, &[]);
            t += 0.04;
        }
        assert_eq!(timer.laps()[0], laps);
        while t < 87.0 {
            timer.update(t, &[]);
            t += 0.04;
        }
        assert_eq!(timer.laps()[0], 0);
    }

    #[test]
    fn a_slow_swimmer_out_of_sight_for_longer_than_reset_s_at_a_turn_keeps_counting() {
        // 1.1 m/s between 1 m and 49 m of a 50 m pool, seen only between 20 m and 37 m: each turn at the
        // start wall keeps the swimmer away 35 s, more than `reset_s` (30). Turns at 21.8 s, 65.5 s,
        // 109.1 s, 152.7 s and 196.4 s: four lengths after the first touch.
        let d = |t: f64| {
            let p = (24.0 + 1.1 * t) % 96.0;
            if p < 48.0 { 1.0 + p } else { 49.0 - (p - 48.0) }
        };
        let mut timer = LapTimer::new(TimingSettings::default(), 8, 50.0);
        let mut laps = Vec::new();
        for i in 0..(230.0 * 25.0) as usize {
            let t = i as f64 / 25.0;
            let at: Vec<LanePosition> = if (20.0..=37.0).contains(&d(t)) { vec![LanePosition::at(4, d(t), 1)] } else { vec![] };
            laps.extend(timer.update(t, &at));
        }
        let times: Vec<f64> = laps.iter().map(|l| l.ts).collect();
        assert_eq!(laps.len(), 4, "{times:?}");
        for (got, want) in times.iter().zip([65.45, 109.09, 152.73, 196.36]) {
            assert!((got - want).abs() < 0.3, "{times:?}");
        }
    }

    #[test]
    fn settings_are_validated() {
        assert!(TimingSettings::default().validate().is_ok());
        assert_eq!(TimingSettings { wall_m: 0.0, ..Default::default() }.validate().unwrap_err().key, "wall_m");
        assert_eq!(TimingSettings { reset_s: f64::NAN, ..Default::default() }.validate().unwrap_err().key, "reset_s");
    }
}
