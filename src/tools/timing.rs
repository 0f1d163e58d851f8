//! Lap timing scored on a synthetic recording: frames rendered in memory at 25 fps, run through the
//! daemon's own stages (detector, tracker, lane map, lap timer) and compared with the exact turns of
//! the synthetic swimmers.

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
}

impl Default for TimingRun {
    fn default() -> Self {
        TimingRun { seconds: 300.0, fps: 25.0, venue: 1, seed: 1, swimmers: (1, 6), width: 640, height: 480 }
    }
}

/// How the timing did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TimingScore {
    pub frames: u64,
    pub lanes: u32,
    pub swimmers: usize,
    /// Lengths the swimmers completed (each turn after a lane's first ends one).
    pub laps_true: usize,
    /// Lengths reported.
    pub laps_reported: usize,
    /// True lengths reported at their turn (same lane, touch within 1 s), over true lengths plus
    /// reported lengths that match none.
    pub laps_exact: f64,
    pub touch_error_s_median: Option<f64>,
    pub touch_error_s_p95: Option<f64>,
    /// Lanes whose length count at the end equals the truth's.
    pub lanes_count_exact: usize,
    /// The lanes with a swimmer.
    pub lanes_swum: usize,
}

/// Renders `run`, detects, tracks, maps and times it, and scores the lengths against the truth.
pub fn evaluate_timing(det: &mut Detector, tracking: &TrackSettings, timing: &TimingSettings, run: &TimingRun) -> Result<TimingScore, DetectError> {
    let scene = Scene::new(run.venue, run.width, run.height, run.swimmers).with_swimmers(run.seed, run.swimmers);
    let lanes = scene.lane_settings();
    let map = LaneMap::new(&lanes).map_err(|e| DetectError::Crashed(format!("the synthetic pool's lanes: {e}")))?;
    let mut tracker = Tracker::new(tracking.clone());
    let mut timer = LapTimer::new(timing.clone(), lanes.count, lanes.length_m);
    let frames = (run.seconds * run.fps).round() as u64;
    let mut img = image::RgbImage::new(run.width, run.height);
    let mut reported: Vec<Lap> = Vec::new();
    for i in 0..frames {
        let t = i as f64 / run.fps;
        scene.render_into(t as f32, i, &mut img);
        let d = det.detect(&img)?;
        tracker.update(i, &d.boxes);
        let at: Vec<LanePosition> = tracker
            .tracks()
            .filter_map(|tr| map.locate_box(&tr.bbox).map(|p| LanePosition::at(p.lane, p.distance_m, tr.id)))
            .collect();
        reported.extend(timer.update(t, &at));
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
    Ok(score(&scene, run.seconds, &reported, frames, lanes.count))
}

/// Matches reported lengths to the scene's turns.
fn score(scene: &Scene, seconds: f64, reported: &[Lap], frames: u64, lanes: u32) -> TimingScore {
    let touches = scene.touches(0.0, seconds);
    let mut truth: Vec<(u32, f64, Wall)> = Vec::new();
    let mut swum = std::collections::BTreeSet::new();
    // A lane's first turn starts its session, as the timer's does; each later one ends a length.
    for &(lane, t, far) in &touches {
        if !swum.insert(lane) {
            truth.push((lane, t, if far { Wall::Far } else { Wall::Start }));
        }
    }
    let mut used = vec![false; reported.len()];
    let mut errors = Vec::new();
    for &(lane, t, wall) in &truth {
        let best = reported
            .iter()
            .enumerate()
            .filter(|(i, l)| !used[*i] && l.lane == lane && l.wall == wall && (l.ts - t).abs() <= 1.0)
            .min_by(|a, b| (a.1.ts - t).abs().total_cmp(&(b.1.ts - t).abs()));
        if let Some((i, l)) = best {
            used[i] = true;
            errors.push((l.ts - t).abs());
            log::debug!("lane {lane} {} turn at {t:.2} s reported at {:.2} s", wall.as_str(), l.ts);
        }
    }
    let matched = errors.len();
    let unmatched = used.iter().filter(|u| !**u).count();
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
        laps_true: truth.len(),
        laps_reported: reported.len(),
        laps_exact: if truth.len() + unmatched == 0 { 1.0 } else { matched as f64 / (truth.len() + unmatched) as f64 },
        touch_error_s_median: quantile(0.5),
        touch_error_s_p95: quantile(0.95),
        lanes_count_exact,
        lanes_swum: lanes_swum.len(),
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
    fn scoring_counts_matches_misses_and_extras() {
        let scene = Scene::new(4, 320, 240, (2, 2));
        let touches = scene.touches(0.0, 200.0);
        let lap = |lane: u32, ts: f64, far: bool| Lap { lane, lap: 1, ts, wall: if far { Wall::Far } else { Wall::Start }, lap_s: 1.0, total_s: 1.0, pace_s_100m: 1.0, track: 1 };
        let mut seen = std::collections::BTreeSet::new();
        let truth: Vec<_> = touches.iter().filter(|t| !seen.insert(t.0)).copied().collect();
        // Every true length reported 0.1 s late: exact.
        let perfect: Vec<Lap> = truth.iter().map(|&(l, t, f)| lap(l, t + 0.1, f)).collect();
        let s = score(&scene, 200.0, &perfect, 5000, scene.lanes());
        assert_eq!((s.laps_exact, s.laps_true, s.lanes_count_exact), (1.0, truth.len(), 2));
        assert!((s.touch_error_s_median.unwrap() - 0.1).abs() < 1e-9);
        // One missed and one invented: (n - 1) / (n + 1).
        let mut off = perfect[1..].to_vec();
        off.push(lap(truth[0].0, truth[0].1 + 5.0, truth[0].2));
        let s = score(&scene, 200.0, &off, 5000, scene.lanes());
        let n = truth.len() as f64;
        assert!((s.laps_exact - (n - 1.0) / (n + 1.0)).abs() < 1e-9, "{s:?}");
    }
}
