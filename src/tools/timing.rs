//! Lap timing and the motionless-swimmer alarm scored on a synthetic recording: frames rendered in
//! memory at 25 fps, run through the daemon's own stages (detector, tracker, lane map, lap timer,
//! alarms) and compared with the exact turns of the synthetic swimmers and, with a stop, when one of
//! them stopped.

use crate::pipeline::alarm::{AlarmEvent, AlarmSettings, Alarms, Level, Sighting};
use crate::pipeline::detect::{DetectError, Detector};
use crate::pipeline::lanes::LaneMap;
use crate::pipeline::timing::{LanePosition, Lap, LapTimer, TimingSettings, Wall};
use crate::pipeline::track::{TrackSettings, Tracker};
use crate::synth::Scene;
use serde::Serialize;

/// What to render.
#[derive(Clone, Debug)]
pub struct TimingRun {
    pub seconds: f64,
    pub fps: f64,
    /// The venue (camera, pool): the demo venue's, 1, is the one the shipped model knows.
    pub venue: u64,
    /// The swimmers: how many, where and how fast.
    pub seed: u64,
    pub swimmers: (u32, u32),
    pub width: u32,
    pub height: u32,
    /// One swimmer stops and floats for this many seconds (a quarter of the way in, mid-pool).
    pub stop_s: Option<f64>,
}

impl Default for TimingRun {
    fn default() -> Self {
        TimingRun { seconds: 300.0, fps: 25.0, venue: 1, seed: 1, swimmers: (1, 6), width: 640, height: 480, stop_s: None }
    }
}

/// How the timing did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TimingScore {
    pub frames: u64,
    pub lanes: u32,
    pub swimmers: usize,
    /// Lengths the swimmers completed (each turn after a lane's first ends one), but for those at the
    /// recording's edges ([`EDGE_S`]).
    pub laps_true: usize,
    /// Lengths that began in the first [`EDGE_S`] seconds or ended in the last: not scored.
    pub laps_unscored: usize,
    /// Lengths reported.
    pub laps_reported: usize,
    /// True lengths reported at their turn (same lane, touch within 1 s), over true lengths plus
    /// reported lengths that match none (both but for those at the edges).
    pub laps_exact: f64,
    pub touch_error_s_median: Option<f64>,
    pub touch_error_s_p95: Option<f64>,
    /// Lanes whose length count at the end equals the truth's.
    pub lanes_count_exact: usize,
    /// The lanes with a swimmer.
    pub lanes_swum: usize,
    /// With a stop: when it began and where (lane), seconds from the stop to its alarm (`None`
    /// without a stop or when no alarm came), and whether it was missed.
    pub stop: Option<StopScore>,
    /// The longest delay from a stop to its alarm; `None` without a stop (or when every stop's alarm
    /// was missed: see `alarms_missed`).
    pub alarm_delay_s_max: Option<f64>,
    /// Stops that raised no alarm.
    pub alarms_missed: u32,
    /// Alarms (and warnings) with nobody stopped there, per hour of video.
    pub false_alarms_per_hour: f64,
    pub false_warnings_per_hour: f64,
}

/// The stopped swimmer and what the alarm made of it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StopScore {
    pub lane: u32,
    pub from_s: f64,
    pub seconds: f64,
    pub warning_delay_s: Option<f64>,
    pub alarm_delay_s: Option<f64>,
    /// Seconds from the swimmer moving on to the alarm's clear.
    pub clear_delay_s: Option<f64>,
}

/// The `[lanes]` of a venue's camera at the size [`evaluate_timing`] renders it (what `poolwatch run`
/// takes from the synthetic source).
pub fn venue_lanes(venue: u64) -> crate::pipeline::lanes::LaneSettings {
    let run = TimingRun { venue, ..TimingRun::default() };
    Scene::new(run.venue, run.width, run.height, run.swimmers).lane_settings()
}

/// Renders `run`, detects, tracks, maps and times it, and scores the lengths against the truth.
pub fn evaluate_timing(det: &mut Detector, tracking: &TrackSettings, timing: &TimingSettings, alarm: &AlarmSettings, run: &TimingRun) -> Result<TimingScore, DetectError> {
    let scene = Scene::new(run.venue, run.width, run.height, run.swimmers).with_swimmers(run.seed, run.swimmers);
    let (scene, stop) = match run.stop_s {
        Some(len) => {
            let from = stop_time(&scene, run.seconds / 4.0);
            scene.with_stop(from as f32, len as f32)
        }
        None => (scene, None),
    };
    let lanes = scene.lane_settings();
    let map = LaneMap::new(&lanes).map_err(|e| DetectError::Crashed(format!("the synthetic pool's lanes: {e}")))?;
    let mut tracker = Tracker::new(tracking.clone());
    let mut timer = LapTimer::new(timing.clone(), lanes.count, lanes.length_m);
    let mut alarms = Alarms::new(alarm.clone());
    let frames = (run.seconds * run.fps).round() as u64;
    let mut img = image::RgbImage::new(run.width, run.height);
    let mut in_sight = InSight::new(run.fps);
    let mut reported: Vec<Lap> = Vec::new();
    let mut raised: Vec<AlarmEvent> = Vec::new();
    for i in 0..frames {
        let t = i as f64 / run.fps;
        for truth in scene.render_into(t as f32, i, &mut img) {
            in_sight.seen(truth.lane, t);
        }
        let d = det.detect(&img)?;
        tracker.update(i, &d.boxes, img.dimensions());
        let at: Vec<LanePosition> = tracker
            .tracks()
            .filter_map(|tr| LanePosition::of_box(&map, &tr.bbox, (run.width, run.height), tr.id))
            .collect();
        if log::log_enabled!(log::Level::Trace) {
            log::trace!("t {t:.2}: {}", at.iter().map(|p| format!("lane {} {:.2} m track {}", p.lane, p.distance_m, p.track)).collect::<Vec<_>>().join(", "));
        }
        reported.extend(timer.update(t, &at));
        let seen: Vec<Sighting> = tracker
            .tracks()
            .map(|tr| Sighting {
                track: tr.id,
                seen: tr.missed == 0,
                bbox: tr.bbox,
                pool_m: map.metres_of_box(&tr.bbox),
                lane: map.locate_box(&tr.bbox).map(|p| p.lane),
                muted: false,
            })
            .collect();
        for e in alarms.update(t, (run.width, run.height), &seen) {
            log::debug!("t {t:.2}: {} lane {:?} at {:?} m, still {:.1} s ({:?})", e.state.as_str(), e.lane, e.distance_m, e.still_s, e.reason);
            raised.push(e);
        }
        if i % 250 == 0 {
            log::debug!("t {t:.1}: {} boxes, tracks at {:?}", d.boxes.len(), at.iter().map(|p| (p.lane, (p.distance_m * 10.0).round() / 10.0)).collect::<Vec<_>>());
        }
    }
    for l in &reported {
        log::debug!("reported {l:?}");
    }
    for t in scene.touches(0.0, run.seconds) {
        log::debug!("true turn {t:?}");
    }
    let mut score = score_laps(&scene, run.seconds, &reported, frames, lanes.count, Some(&in_sight));
    score_alarms(&mut score, stop.map(|(l, f, s)| (l, f as f64, s as f64)), &raised, run.seconds, alarm);
    Ok(score)
}

/// When the first swimmer, from `after` seconds on, is next in the middle of its length (where every
/// camera sees it): the stop's start.
fn stop_time(scene: &Scene, after: f64) -> f64 {
    let Some(&lane) = scene.swimmer_lanes().first() else {
        return after;
    };
    let mid = scene.length_m() as f64 / 2.0;
    let head = |t: f64| scene.head_position(lane, t as f32).unwrap_or(mid);
    let mut t = after;
    while t < after + 120.0 {
        if (head(t) - mid) * (head(t + 0.04) - mid) <= 0.0 {
            return t + 0.04;
        }
        t += 0.04;
    }
    after
}

/// Scores the alarm's events: the stop's (its lane, from its start to `gone_s` after its end) and the
/// false ones.
fn score_alarms(score: &mut TimingScore, stop: Option<(u32, f64, f64)>, raised: &[AlarmEvent], seconds: f64, settings: &AlarmSettings) {
    let ours = |e: &AlarmEvent| stop.is_some_and(|(lane, from, len)| e.lane == Some(lane) && e.ts >= from && e.ts <= from + len + settings.gone_s + 1.0);
    let hours = seconds / 3600.0;
    let false_of = |level: Level| raised.iter().filter(|e| e.state == level && !ours(e)).count() as f64 / hours;
    score.false_alarms_per_hour = false_of(Level::Alarm);
    score.false_warnings_per_hour = false_of(Level::Warning);
    score.stop = stop.map(|(lane, from, len)| {
        let first = |level: Level| raised.iter().find(|e| e.state == level && ours(e)).map(|e| e.ts - from);
        StopScore {
            lane,
            from_s: from,
            seconds: len,
            warning_delay_s: first(Level::Warning),
            alarm_delay_s: first(Level::Alarm),
            clear_delay_s: raised.iter().find(|e| e.state == Level::Clear && ours(e)).map(|e| e.ts - from - len),
        }
    });
    score.alarm_delay_s_max = score.stop.as_ref().and_then(|s| s.alarm_delay_s);
    score.alarms_missed = score.stop.as_ref().map_or(0, |s| s.alarm_delay_s.is_none() as u32);
}

/// Lengths that began in the recording's first seconds or end in its last ones are not scored: a turn
/// is recognised only from the swimming before and after it (out of sight at the wall, for up to
/// about 5 s), so no timer can know those.
pub const EDGE_S: f64 = 5.0;

/// A turn is known from the swimming before and after it: a length is scored only if its swimmer was
/// in the picture for this long (seconds, in all) in the length before it, in it, and in the one after
/// it (or, for the first and last, since the recording began and until it ends). A camera that sees a
/// part of a 50 m lane loses a swimmer for up to 40 s at a turn; a turn the recording begins or ends
/// within is not known to any timer.
pub const IN_SIGHT_S: f64 = 2.0;

/// When each lane's swimmer was in the picture (from the synthetic truth), frame by frame.
#[derive(Clone, Debug, Default)]
pub struct InSight {
    fps: f64,
    /// Per lane, the frame times (ascending) its swimmer was in the picture.
    lanes: std::collections::BTreeMap<u32, Vec<f64>>,
}

impl InSight {
    pub fn new(fps: f64) -> InSight {
        InSight { fps, lanes: Default::default() }
    }

    /// The swimmer of `lane` is in the picture at `t` (frames in time order).
    pub fn seen(&mut self, lane: u32, t: f64) {
        self.lanes.entry(lane).or_default().push(t);
    }

    /// Seconds the swimmer of `lane` was in the picture between `a` and `b`.
    fn seconds(&self, lane: u32, a: f64, b: f64) -> f64 {
        let Some(times) = self.lanes.get(&lane) else { return 0.0 };
        // (a, b) is empty when b <= a: no frame.
        times.partition_point(|&x| x < b).saturating_sub(times.partition_point(|&x| x <= a)) as f64 / self.fps
    }
}

/// Matches reported lengths to the scene's turns, within 1 s; scores those not at the recording's
/// edges ([`EDGE_S`]) and, given when the swimmers were in the picture, those whose turns could be
/// seen coming and going ([`IN_SIGHT_S`]).
pub fn score_laps(scene: &Scene, seconds: f64, reported: &[Lap], frames: u64, lanes: u32, in_sight: Option<&InSight>) -> TimingScore {
    let touches = scene.touches(0.0, seconds);
    let inside = |from: f64, to: f64| from >= EDGE_S && to <= seconds - EDGE_S;
    // A lane's first turn starts its session, as the timer's does; each later one ends a length: lane,
    // time, wall, and whether it is scored.
    let mut truth: Vec<(u32, f64, Wall, bool)> = Vec::new();
    let mut by_lane: std::collections::BTreeMap<u32, Vec<(f64, bool)>> = Default::default();
    for &(lane, t, far) in &touches {
        by_lane.entry(lane).or_default().push((t, far));
    }
    for (&lane, turns) in &by_lane {
        for k in 1..turns.len() {
            let (from, (to, far)) = (turns[k - 1].0, turns[k]);
            let prev = if k >= 2 { turns[k - 2].0 } else { 0.0 };
            let next = turns.get(k + 1).map_or(seconds, |n| n.0);
            let known = in_sight.is_none_or(|s| [(prev, from), (from, to), (to, next)].iter().all(|&(a, b)| s.seconds(lane, a, b) >= IN_SIGHT_S));
            truth.push((lane, to, if far { Wall::Far } else { Wall::Start }, inside(from, to) && known));
        }
    }
    truth.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut used = vec![false; reported.len()];
    let mut errors = Vec::new();
    for &(lane, t, wall, scored) in &truth {
        let best = reported
            .iter()
            .enumerate()
            .filter(|(i, l)| !used[*i] && l.lane == lane && l.wall == wall && (l.ts - t).abs() <= 1.0)
            .min_by(|a, b| (a.1.ts - t).abs().total_cmp(&(b.1.ts - t).abs()));
        if let Some((i, l)) = best {
            used[i] = true;
            if scored {
                errors.push((l.ts - t).abs());
            }
            log::debug!("lane {lane} {} turn at {t:.2} s reported at {:.2} s{}", wall.as_str(), l.ts, if scored { "" } else { " (not scored)" });
        }
    }
    let matched = errors.len();
    let laps_true = truth.iter().filter(|t| t.3).count();
    // Reported lengths that match no turn, but for those at the edges.
    let unmatched = reported.iter().zip(&used).filter(|(l, u)| !**u && inside(l.ts - l.lap_s, l.ts)).count();
    errors.sort_by(f64::total_cmp);
    let quantile = |q: f64| (!errors.is_empty()).then(|| errors[((errors.len() - 1) as f64 * q).round() as usize]);
    let lanes_swum: std::collections::BTreeSet<u32> = touches.iter().map(|t| t.0).collect();
    let lanes_count_exact = lanes_swum
        .iter()
        .filter(|&&lane| truth.iter().filter(|t| t.0 == lane).count() == reported.iter().filter(|l| l.lane == lane).count())
        .count();
    TimingScore {
        frames,
        lanes,
        swimmers: scene.swimmer_count(),
        laps_true,
        laps_unscored: truth.len() - laps_true,
        laps_reported: reported.len(),
        laps_exact: if laps_true + unmatched == 0 { 1.0 } else { matched as f64 / (laps_true + unmatched) as f64 },
        touch_error_s_median: quantile(0.5),
        touch_error_s_p95: quantile(0.95),
        lanes_count_exact,
        lanes_swum: lanes_swum.len(),
        ..TimingScore::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scenes_turns_are_where_its_swimmers_reverse() {
        let scene = Scene::new(4, 320, 240, (3, 3));
        let turns = scene.touches(0.0, 120.0);
        assert!(turns.len() >= 6, "{turns:?}");
        // Sampled finely, each swimmer's head reverses at those times, 1 m from the wall.
        for &(lane, t, far) in &turns {
            let head = |t: f64| scene.head_position(lane, t as f32).unwrap();
            let (before, at, after) = (head(t - 0.05), head(t), head(t + 0.05));
            let l = scene.length_m() as f64;
            if far {
                assert!(before < at + 1e-3 && after < at + 1e-3 && (at - (l - 1.0)).abs() < 0.01, "{lane} {t}: {before} {at} {after}");
            } else {
                assert!(before > at - 1e-3 && after > at - 1e-3 && (at - 1.0).abs() < 0.01, "{lane} {t}: {before} {at} {after}");
            }
        }
    }

    #[test]
    fn scoring_counts_matches_misses_and_extras_but_not_at_the_edges() {
        let scene = Scene::new(4, 320, 240, (2, 2));
        let touches = scene.touches(0.0, 200.0);
        let lap = |lane: u32, ts: f64, far: bool, lap_s: f64| Lap { lane, lap: 1, ts, wall: if far { Wall::Far } else { Wall::Start }, lap_s, total_s: 1.0, pace_s_100m: 1.0, track: 1 };
        // Every turn after a lane's first ends a length, which began at the lane's turn before.
        let mut before = std::collections::BTreeMap::new();
        let lengths: Vec<(u32, f64, bool, f64)> = touches.iter().filter_map(|&(l, t, f)| before.insert(l, t).map(|from| (l, t, f, from))).collect();
        let scored = |&(_, t, _, from): &(u32, f64, bool, f64)| from >= EDGE_S && t <= 200.0 - EDGE_S;
        let n = lengths.iter().filter(|l| scored(l)).count();
        assert!(n >= 4, "{lengths:?}");
        // Every length reported 0.1 s late: exact.
        let perfect: Vec<Lap> = lengths.iter().map(|&(l, t, f, from)| lap(l, t + 0.1, f, t - from)).collect();
        let s = score_laps(&scene, 200.0, &perfect, 5000, scene.lanes(), None);
        assert_eq!((s.laps_exact, s.laps_true, s.laps_unscored, s.lanes_count_exact), (1.0, n, lengths.len() - n, 2));
        assert!((s.touch_error_s_median.unwrap() - 0.1).abs() < 1e-9);
        // One scored length missed and one invented in the middle of a length: (n - 1) / (n + 1).
        let first = lengths.iter().position(|l| scored(l)).unwrap();
        let (lane, mid, far) = (lengths[first].0, (lengths[first].1 + lengths[first].3) / 2.0, lengths[first].2);
        let mut off: Vec<Lap> = perfect.iter().enumerate().filter(|(i, _)| *i != first).map(|(_, l)| l.clone()).collect();
        off.push(lap(lane, mid, far, 1.0));
        let s = score_laps(&scene, 200.0, &off, 5000, scene.lanes(), None);
        let n = n as f64;
        assert!((s.laps_exact - (n - 1.0) / (n + 1.0)).abs() < 1e-9, "{s:?}");
        // A length invented that began in the first seconds, or ends in the last, is not held against
        // it.
        let mut edges = perfect.clone();
        edges.push(lap(lane, mid, far, mid - 1.0));
        edges.push(lap(lane, 200.0 - EDGE_S / 2.0, far, 1.0));
        let s = score_laps(&scene, 200.0, &edges, 5000, scene.lanes(), None);
        assert_eq!((s.laps_exact, s.laps_true), (1.0, n as usize), "{s:?}");
        // The first scored length's swimmer out of the picture from its end on, but for 1 s: none of
        // the lane's lengths from that one on is known, and missing them is not held against the timer.
        let (lane, end) = (lengths[first].0, lengths[first].1);
        let mut sight = InSight::new(25.0);
        for i in 0..5000 {
            let t = i as f64 / 25.0;
            for l in 1..=scene.lanes() {
                if l != lane || t < end || (end + 5.0..end + 6.0).contains(&t) {
                    sight.seen(l, t);
                }
            }
        }
        assert_eq!((sight.seconds(lane, end, end), sight.seconds(lane, 3.0, 1.0)), (0.0, 0.0), "an empty interval");
        let next = lengths.iter().position(|l| l.0 == lane && l.3 == end);
        let gone: Vec<Lap> = perfect.iter().enumerate().filter(|(i, _)| *i != first && Some(*i) != next).map(|(_, l)| l.clone()).collect();
        let s = score_laps(&scene, 200.0, &gone, 5000, scene.lanes(), Some(&sight));
        let lane_rest = lengths.iter().filter(|l| l.0 == lane && l.1 > end && scored(l)).count();
        assert_eq!((s.laps_exact, s.laps_true), (1.0, n as usize - 1 - lane_rest), "{s:?}");
    }
}
