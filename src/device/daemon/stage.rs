//! What the main thread keeps across frames, in frame order: the tracker, the lane map, the lap
//! timer and the motionless-swimmer alarms. It turns a detected frame into its report.

use crate::device::config::Config;
use crate::device::report::{Event, FrameReport, Picture, PictureDemand, Swimmer, Tracked, round_f64};
use crate::device::workers::{Detected, Workers};
use crate::device::zones::ZoneControl;
use crate::pipeline::alarm::{Alarms, Sighting};
use crate::pipeline::detect::DetectError;
use crate::pipeline::lanes::LaneMap;
use crate::pipeline::timing::{LanePosition, LapTimer};
use crate::pipeline::track::Tracker;
use std::sync::Arc;
use std::time::Instant;

pub struct Stage {
    pub tracker: Tracker,
    lanes: Option<LaneMap>,
    lane_settings: Option<crate::pipeline::lanes::LaneSettings>,
    timer: Option<LapTimer>,
    alarms: Alarms,
    zones: Arc<ZoneControl>,
    /// The alarm's view of this frame's swimmers (kept between frames, not allocated for each).
    sightings: Vec<Sighting>,
    /// The lap timer's view of this frame's swimmers (kept between frames, as `sightings`).
    positions: Vec<LanePosition>,
}

impl Stage {
    /// The stage of `cfg`, keeping the old stage's swimmers (and, with the same lanes, its lap counts)
    /// across a reload when given.
    pub fn new(cfg: &Config, old: Option<Stage>, zones: Arc<ZoneControl>) -> Stage {
        let lanes = cfg.lanes.as_ref().and_then(|l| LaneMap::new(l).ok());
        // Alarms raised stay raised across a reload that keeps the lanes (their places are the same).
        let (tracker, timer, alarms) = match old {
            Some(o) => {
                let same = o.lane_settings == cfg.lanes;
                (Some(o.tracker), o.timer.filter(|_| same), Some(o.alarms).filter(|_| same))
            }
            None => (None, None, None),
        };
        let mut alarms = alarms.unwrap_or_else(|| Alarms::new(cfg.alarm.clone()));
        alarms.set_settings(cfg.alarm.clone());
        let mut tracker = tracker.unwrap_or_else(|| Tracker::new(cfg.tracking.clone()));
        tracker.set_settings(cfg.tracking.clone());
        let mut timer = timer.or_else(|| cfg.lanes.as_ref().map(|l| LapTimer::new(cfg.timing.clone(), l.count, l.length_m)));
        if let Some(t) = &mut timer {
            t.set_settings(cfg.timing.clone());
        }
        Stage { tracker, lanes, lane_settings: cfg.lanes.clone(), timer, alarms, zones, sightings: Vec::new(), positions: Vec::new() }
    }

    /// Feeds one frame's boxes to the tracker: its confirmed swimmers with their lanes, the events, and
    /// the swimmers per lane.
    fn track(&mut self, seq: u64, ts: f64, size: (u32, u32), boxes: &[crate::pipeline::boxes::BBox]) -> Tracked {
        let events = self.tracker.update(seq, boxes, size);
        let locate = |b: &[f32; 4]| self.lanes.as_ref().and_then(|m| m.locate_box(b));
        let swimmers: Vec<Swimmer> = self.tracker.tracks().map(|t| Swimmer::new(t.clone(), locate(&t.bbox))).collect();
        let events: Vec<Event> = events
            .into_iter()
            .map(|e| Event { event: e.kind, frame: seq, ts, swimmer: Swimmer::new(e.track.clone(), locate(&e.track.bbox)) })
            .collect();
        let lanes = match &self.lanes {
            Some(m) => {
                let mut counts = vec![0u32; m.count() as usize];
                for s in &swimmers {
                    if let Some(l) = s.lane {
                        counts[l as usize - 1] += 1;
                    }
                }
                counts
            }
            None => Vec::new(),
        };
        let laps = match (&mut self.timer, &self.lanes) {
            (Some(timer), Some(map)) => {
                self.positions.clear();
                self.positions.extend(swimmers.iter().filter_map(|s| LanePosition::of_box(map, &s.track.bbox, size, s.track.id)));
                timer.update(ts, &self.positions)
            }
            _ => Vec::new(),
        };
        // Zones switched off mute the alarm for the swimmers whose box centre is in them.
        let now = at_clock(ts);
        self.zones.follow(now);
        for zone in self.zones.expire(now) {
            log::info!("zone {zone}: its time is up, the alarm watches it again");
        }
        let mut sightings = std::mem::take(&mut self.sightings);
        sightings.clear();
        sightings.extend(swimmers.iter().map(|s| {
                let b = s.track.bbox;
                Sighting {
                    track: s.track.id,
                    seen: s.track.missed == 0,
                    bbox: b,
                    pool_m: self.lanes.as_ref().and_then(|m| m.metres_of_box(&b)),
                    lane: s.lane,
                    muted: self.zones.muted(((b[0] + b[2]) / 2.0) as f64, ((b[1] + b[3]) / 2.0) as f64, now),
                }
            }));
        let alarms = self.alarms.update(ts, size, &sightings);
        self.sightings = sightings;
        for a in &alarms {
            match a.state {
                crate::pipeline::alarm::Level::Clear => {
                    let why = match a.reason {
                        Some(crate::pipeline::alarm::ClearReason::Moved) => "moved",
                        Some(crate::pipeline::alarm::ClearReason::Gone) => "not seen any more",
                        Some(crate::pipeline::alarm::ClearReason::Off) => "switched off",
                        None => "",
                    };
                    log::info!("alarm clear: swimmer {} ({why})", a.track)
                }
                level => {
                    let place = match (a.lane, a.distance_m) {
                        (Some(l), Some(d)) => format!("lane {l}, {d:.1} m from the start wall"),
                        _ => format!("box {:?}", a.bbox.map(|v| v.round())),
                    };
                    log::warn!("{}: swimmer {} still for {:.0} s ({place})", level.as_str(), a.track, a.still_s)
                }
            }
        }
        let alarm_active = self.alarms.active().collect();
        Tracked { swimmers, events, lanes, laps, alarms, alarm_active }
    }

    /// Tracks a detected frame's swimmers and makes its report; the heatmap goes into the report when
    /// an output draws this frame, else back to the workers.
    pub fn finish(&mut self, detected: Detected, pictures: &PictureDemand, workers: &Workers) -> Result<FrameReport, DetectError> {
        let Detected { frame, result, heatmap, mask } = detected;
        let d = match result {
            Ok(d) => d,
            Err(e) => {
                workers.recycle(heatmap);
                return Err(e);
            }
        };
        let t0 = Instant::now();
        let ts = round_f64(frame.unix_ts(), 1000.0);
        let tracked = self.track(frame.seq, ts, (d.width, d.height), &d.boxes);
        let picture = if pictures.wanted(!tracked.events.is_empty() || !tracked.alarms.is_empty()) {
            let lanes = self.lane_settings.as_ref().map(|l| (l.corners, l.count));
            let zones = self.zones.outlines(at_clock(ts));
            Some(Arc::new(Picture { heatmap, mask, lanes, zones, image: frame.image }))
        } else {
            workers.recycle(heatmap);
            None
        };
        // The frame's own work: its detection (on a worker) and its tracking here.
        let ms = d.timings.total + t0.elapsed().as_secs_f64() * 1000.0;
        Ok(FrameReport::new(frame.seq, ts, frame.origin, d, tracked, ms, picture))
    }
}

/// A frame's time (Unix seconds) as a clock time, for the zones' timers (a time that is not a clock's
/// is the epoch, never a panic).
fn at_clock(ts: f64) -> std::time::SystemTime {
    let d = std::time::Duration::try_from_secs_f64(ts).unwrap_or_default();
    std::time::SystemTime::UNIX_EPOCH.checked_add(d).unwrap_or(std::time::SystemTime::UNIX_EPOCH)
}
