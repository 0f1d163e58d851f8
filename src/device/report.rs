//! What the pipeline hands its outputs for each processed frame (boxes, tracked swimmers with their
//! lanes, events), the records printed for it (rounded here, in one place), and the running counters
//! every output can report.

use crate::pipeline::alarm::{AlarmEvent, Level};
use crate::pipeline::boxes::BBox;
use crate::pipeline::heatmap::Heatmap;
use crate::pipeline::lanes::PoolPosition;
use crate::pipeline::timing::Lap;
use crate::pipeline::track::{EventKind, Track};
use image::RgbImage;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// `v` rounded to a multiple of `1 / per_unit` (`per_unit` 1000: milliseconds of a second, or three
/// decimals): how every number in an output record is rounded.
pub fn round_f64(v: f64, per_unit: f64) -> f64 {
    (v * per_unit).round() / per_unit
}

/// A lap as records carry it: times to the millisecond (touch) and the hundredth (lap, total), pace
/// to the tenth.
fn round_lap(l: Lap) -> Lap {
    Lap { ts: round_f64(l.ts, 1000.0), lap_s: round_f64(l.lap_s, 100.0), total_s: round_f64(l.total_s, 100.0), pace_s_100m: round_f64(l.pace_s_100m, 10.0), ..l }
}

fn round_alarm(a: AlarmEvent) -> AlarmEvent {
    let bbox = a.bbox.map(|v| round_f32(v, 10.0));
    AlarmEvent { ts: round_f64(a.ts, 1000.0), still_s: round_f64(a.still_s, 10.0), distance_m: a.distance_m.map(|d| round_f64(d, 100.0)), bbox, ..a }
}

/// [`round_f64`] in f32, for boxes and scores.
pub fn round_f32(v: f32, per_unit: f32) -> f32 {
    (v * per_unit).round() / per_unit
}

/// One box as output records carry it (pixels rounded to 0.1).
#[derive(Clone, Debug, Serialize)]
pub struct BoxRecord {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

impl From<&BBox> for BoxRecord {
    fn from(b: &BBox) -> Self {
        let r = |v: f32| round_f32(v, 10.0);
        BoxRecord { x1: r(b.x1), y1: r(b.y1), x2: r(b.x2), y2: r(b.y2), score: round_f32(b.score, 1000.0) }
    }
}

/// The JSON line `poolwatch detect` prints for an image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageRecord {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BoxRecord>,
    pub ms: f64,
}

impl ImageRecord {
    pub fn new(image: String, d: &crate::pipeline::detect::Detection) -> ImageRecord {
        ImageRecord {
            image,
            width: d.width,
            height: d.height,
            boxes: d.boxes.iter().map(BoxRecord::from).collect(),
            ms: round_f64(d.timings.total, 100.0),
        }
    }
}

/// A confirmed swimmer in one frame, with where it is in the pool when lanes are configured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Swimmer {
    #[serde(flatten)]
    pub track: Track,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lane: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

impl Swimmer {
    pub fn new(mut track: Track, pos: Option<PoolPosition>) -> Swimmer {
        track.score = round_f32(track.score, 1000.0);
        Swimmer { track, lane: pos.map(|p| p.lane), distance_m: pos.map(|p| round_f64(p.distance_m, 100.0)) }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub event: EventKind,
    pub frame: u64,
    pub ts: f64,
    #[serde(flatten)]
    pub swimmer: Swimmer,
}

/// One processed frame.
#[derive(Clone, Debug)]
pub struct FrameReport {
    pub seq: u64,
    /// Capture time, seconds since the Unix epoch.
    pub ts: f64,
    pub origin: String,
    pub width: u32,
    pub height: u32,
    /// This frame's boxes, before tracking.
    pub boxes: Vec<BBox>,
    /// Confirmed swimmers seen in this frame.
    pub swimmers: Vec<Swimmer>,
    pub events: Vec<Event>,
    /// Swimmers per lane (lane 1 first); empty without lanes.
    pub lanes: Vec<u32>,
    /// Lengths completed in this frame (lap timing), with their touch times.
    pub laps: Vec<Lap>,
    /// Motionless-swimmer warnings and alarms raised or cleared in this frame.
    pub alarms: Vec<AlarmEvent>,
    /// Those raised now (after this frame).
    pub alarm_active: Vec<AlarmEvent>,
    /// Pipeline time of this frame, milliseconds.
    pub ms: f64,
    pub threshold: f32,
    /// The frame and its heatmap, for outputs that draw (snapshots, preview); `None` when none needs them.
    pub picture: Option<Arc<Picture>>,
}

/// A frame's tracking: its confirmed swimmers, the events, and the swimmers per lane.
#[derive(Clone, Debug, Default)]
pub struct Tracked {
    pub swimmers: Vec<Swimmer>,
    pub events: Vec<Event>,
    /// Swimmers per lane (lane 1 first); empty without lanes.
    pub lanes: Vec<u32>,
    /// Lengths completed in this frame (lap timing).
    pub laps: Vec<Lap>,
    /// Alarm levels changed in this frame, and the alarms raised now.
    pub alarms: Vec<AlarmEvent>,
    pub alarm_active: Vec<AlarmEvent>,
}

impl FrameReport {
    /// The report of a frame: its detection, its tracking, the time both took (`ms`) and its picture
    /// when an output draws it.
    pub fn new(seq: u64, ts: f64, origin: String, d: crate::pipeline::detect::Detection, tracked: Tracked, ms: f64, picture: Option<Arc<Picture>>) -> FrameReport {
        let Tracked { swimmers, events, lanes, laps, alarms, alarm_active } = tracked;
        FrameReport {
            seq,
            ts,
            origin,
            width: d.width,
            height: d.height,
            boxes: d.boxes,
            swimmers,
            events,
            lanes,
            laps: laps.into_iter().map(round_lap).collect(),
            alarms: alarms.into_iter().map(round_alarm).collect(),
            alarm_active: alarm_active.into_iter().map(round_alarm).collect(),
            ms: round_f64(ms, 100.0),
            threshold: d.threshold,
            picture,
        }
    }
}

/// What an output needs to draw a frame: the pixels, the heatmap and the pool mask.
#[derive(Debug)]
pub struct Picture {
    pub image: RgbImage,
    pub heatmap: Heatmap,
    /// The pool mask at the heatmap's resolution (empty when the whole frame is watched).
    pub mask: std::sync::Arc<[f32]>,
    /// The lane map's corners and lane count, to draw the pool outline.
    pub lanes: Option<([[f64; 2]; 4], u32)>,
    /// The alarm zones: name, outline, whether switched off.
    pub zones: Vec<(String, Vec<[f64; 2]>, bool)>,
}

impl FrameReport {
    /// The frame annotated for people: heatmap, pool mask, lanes, boxes, swimmer IDs and a status line.
    pub fn annotated(&self) -> Option<RgbImage> {
        let p = self.picture.as_ref()?;
        let raw: Vec<BBox> = self.boxes.clone();
        let mut status = format!("frame {}  {} swimmers  {:.1} ms", self.seq, self.swimmers.len(), self.ms);
        for a in &self.alarm_active {
            status.push_str(&format!("  {}: #{} still {:.0} s", a.state.as_str().to_uppercase(), a.track, a.still_s));
        }
        let mut img = crate::pipeline::overlay::annotate(&p.image, &p.heatmap, self.threshold, &raw, &status);
        crate::pipeline::overlay::dim_outside_mask(&mut img, &p.mask, p.heatmap.width, p.heatmap.height);
        if let Some((corners, n)) = &p.lanes {
            crate::pipeline::overlay::draw_lanes(&mut img, corners, *n);
        }
        for s in &self.swimmers {
            let b = s.track.bbox;
            let text = match s.lane {
                Some(l) => format!("#{} L{l}", s.track.id),
                None => format!("#{}", s.track.id),
            };
            crate::pipeline::overlay::label(&mut img, b[0] as i32, b[3] as i32 + 2, &text, [255, 255, 80]);
        }
        // Alarm zones: their outline and name, and OFF (grey) while switched off.
        for (name, polygon, off) in &p.zones {
            let color = if *off { [150, 150, 150] } else { [235, 100, 235] };
            crate::pipeline::overlay::draw_polygon(&mut img, polygon, color);
            let (x, y) = polygon.iter().fold((f64::MAX, f64::MAX), |(x, y), p| (x.min(p[0]), y.min(p[1])));
            let text = if *off { format!("{name} OFF") } else { name.clone() };
            crate::pipeline::overlay::label(&mut img, x.max(0.0) as i32 + 2, y.max(0.0) as i32 + 2, &text, color);
        }
        // Swimmers not moving: their box in orange (warning) or red (alarm), and how long.
        for a in &self.alarm_active {
            let color = if a.state == Level::Alarm { [255, 30, 30] } else { [255, 160, 0] };
            let [x1, y1, x2, y2] = a.bbox;
            crate::pipeline::overlay::draw_boxes(&mut img, &[BBox::new(x1 - 2.0, y1 - 2.0, x2 + 2.0, y2 + 2.0)], color);
            let text = format!("{} {:.0}s", a.state.as_str().to_uppercase(), a.still_s);
            crate::pipeline::overlay::label(&mut img, x1 as i32, y1 as i32 - 10, &text, color);
        }
        Some(img)
    }

    /// [`Self::annotated`] as JPEG bytes.
    pub fn annotated_jpeg(&self, quality: u8) -> Option<Vec<u8>> {
        let img = self.annotated()?;
        let mut out = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        img.write_with_encoder(enc).ok()?;
        Some(out)
    }
}

/// The JSON line of a frame: `detect`'s record plus `frame`, `ts` and the tracked swimmers.
#[derive(Clone, Debug, Serialize)]
pub struct FrameRecord<'a> {
    pub frame: u64,
    pub ts: f64,
    pub image: &'a str,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BoxRecord>,
    pub ms: f64,
    pub swimmers: &'a [Swimmer],
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    pub lanes: &'a [u32],
    #[serde(skip_serializing_if = "<[Lap]>::is_empty")]
    pub laps: &'a [Lap],
    #[serde(skip_serializing_if = "<[AlarmEvent]>::is_empty")]
    pub alarms: &'a [AlarmEvent],
}

impl FrameReport {
    pub fn record(&self) -> FrameRecord<'_> {
        FrameRecord {
            frame: self.seq,
            ts: self.ts,
            image: &self.origin,
            width: self.width,
            height: self.height,
            boxes: self.boxes.iter().map(BoxRecord::from).collect(),
            ms: self.ms,
            swimmers: &self.swimmers,
            lanes: &self.lanes,
            laps: &self.laps,
            alarms: &self.alarms,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string(&self.record()).unwrap_or_default()
    }
}

/// Who wants frames drawn: drawing a frame (heatmap, boxes, JPEG) costs more than detecting it, so a
/// report carries its picture only when an output asked. Outputs say what they want here; the run
/// loop asks [`wanted`](Self::wanted) once per frame.
#[derive(Debug, Default)]
pub struct PictureDemand {
    /// Open preview streams: while any is, every frame is drawn.
    streams: AtomicU64,
    /// Someone asked for `/snapshot.jpg`: the next frame is drawn.
    once: AtomicBool,
    /// Snapshots are on: frames with events are drawn.
    on_events: AtomicBool,
}

impl PictureDemand {
    /// Counts one more open stream if fewer than `max` are open; whether it did.
    pub fn try_open_stream(&self, max: u64) -> bool {
        self.streams.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1)).is_ok()
    }

    pub fn stream_closed(&self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
    }

    /// Preview streams open now.
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// The next frame is drawn.
    pub fn request_one(&self) {
        self.once.store(true, Ordering::Relaxed);
    }

    /// Frames with events are drawn (or no longer).
    pub fn set_on_events(&self, on: bool) {
        self.on_events.store(on, Ordering::Relaxed);
    }

    /// Whether a frame with (or without) events is to be drawn; takes a pending single request.
    pub fn wanted(&self, has_events: bool) -> bool {
        self.streams() > 0 || self.once.swap(false, Ordering::Relaxed) || (self.on_events.load(Ordering::Relaxed) && has_events)
    }
}

/// Seconds without a processed frame after which the pipeline is `stalled`.
pub const STALLED_AFTER_S: f64 = 5.0;
/// Seconds in which every frame failed after which the pipeline is `failing`.
pub const FAILING_AFTER_S: f64 = 5.0;

/// How the pipeline is doing, as `/health`, MQTT's stats and the serial heartbeat report it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No frame processed yet.
    #[default]
    Starting,
    Ok,
    /// The camera is away (being reopened).
    NoSource,
    /// Frames come, but every one of them has failed for [`FAILING_AFTER_S`] (decoding, the model, a
    /// mask): the daemon runs and detects nothing.
    Failing,
    /// No frame processed for [`STALLED_AFTER_S`], and none failing either: nothing comes through.
    Stalled,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Ok => "ok",
            Health::NoSource => "no_source",
            Health::Failing => "failing",
            Health::Stalled => "stalled",
        }
    }
}

/// Counters shared by the pipeline threads and read by outputs, `/metrics` and the watchdog.
pub struct Metrics {
    started: Instant,
    pub captured: AtomicU64,
    pub processed: AtomicU64,
    /// Frames dropped because inference was behind the camera.
    pub dropped: AtomicU64,
    /// Frames skipped by `every_nth`.
    pub skipped: AtomicU64,
    pub bad_frames: AtomicU64,
    pub source_errors: AtomicU64,
    /// Microseconds of pipeline time of the last frame.
    pub last_latency_us: AtomicU64,
    /// Milliseconds since `started` of the last processed frame.
    pub last_processed_ms: AtomicU64,
    pub swimmers: AtomicU64,
    pub source_ok: AtomicBool,
    /// Output messages dropped (slow serial port, broker away with a full buffer).
    pub output_dropped: AtomicU64,
    /// Events (MQTT QoS 1 messages: track events, lanes) among `output_dropped`.
    pub events_dropped: AtomicU64,
    /// Frames per second over the last second, times 1000 (kept by the outputs thread).
    pub fps_milli: AtomicU64,
    /// Milliseconds since `started` of the first failed frame since the last good one (`u64::MAX`:
    /// the last frame was good).
    failing_since_ms: AtomicU64,
    /// Milliseconds since `started` of the last failed frame.
    last_failure_ms: AtomicU64,
    /// Why the last frame failed.
    last_error: Mutex<Option<String>>,
    /// The motionless-swimmer warnings and alarms raised after the last frame.
    alarms: Mutex<Vec<AlarmEvent>>,
}

/// A snapshot of [`Metrics`] with rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub uptime_s: f64,
    pub fps: f64,
    pub latency_ms: f64,
    pub captured: u64,
    pub processed: u64,
    pub dropped: u64,
    pub skipped: u64,
    pub bad_frames: u64,
    pub source_errors: u64,
    pub output_dropped: u64,
    pub events_dropped: u64,
    pub swimmers: u64,
    pub source_ok: bool,
    pub state: Health,
    /// Why frames fail, while `state` is `failing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The highest motionless-swimmer level raised now, and each warning or alarm.
    pub alarm: Level,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmEvent>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            captured: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            bad_frames: AtomicU64::new(0),
            source_errors: AtomicU64::new(0),
            last_latency_us: AtomicU64::new(0),
            last_processed_ms: AtomicU64::new(u64::MAX),
            swimmers: AtomicU64::new(0),
            source_ok: AtomicBool::new(false),
            output_dropped: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
            fps_milli: AtomicU64::new(0),
            failing_since_ms: AtomicU64::new(u64::MAX),
            last_failure_ms: AtomicU64::new(u64::MAX),
            last_error: Mutex::new(None),
            alarms: Mutex::new(Vec::new()),
        }
    }
}

impl Metrics {
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn frame_done(&self, latency_s: f64, swimmers: usize) {
        self.failing_since_ms.store(u64::MAX, Ordering::Relaxed);
        self.processed.fetch_add(1, Ordering::Relaxed);
        self.last_latency_us.store((latency_s * 1e6) as u64, Ordering::Relaxed);
        self.last_processed_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.swimmers.store(swimmers as u64, Ordering::Relaxed);
    }

    /// The warnings and alarms raised now (kept for `/health`, `/metrics` and the status line).
    pub fn set_alarms(&self, active: &[AlarmEvent]) {
        let mut a = crate::util::sync::lock(&self.alarms);
        if a.as_slice() != active {
            *a = active.to_vec();
        }
    }

    /// Counts a frame that failed (unreadable, or an error in a stage) and keeps why.
    pub fn frame_failed(&self, why: &dyn std::fmt::Display) {
        let now = self.now_ms();
        self.bad_frames.fetch_add(1, Ordering::Relaxed);
        let _ = self.failing_since_ms.compare_exchange(u64::MAX, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_failure_ms.store(now, Ordering::Relaxed);
        let mut why = why.to_string();
        if why.len() > 300 {
            let cut = (0..=300).rev().find(|&i| why.is_char_boundary(i)).unwrap_or(0);
            why.truncate(cut);
            why.push_str("...");
        }
        *crate::util::sync::lock(&self.last_error) = Some(why);
    }

    /// The pipeline's state: `failing` when every frame has failed for [`FAILING_AFTER_S`] and
    /// frames still fail, else `no_source`, `starting`, `stalled` or `ok`.
    pub fn health(&self) -> Health {
        self.health_at(self.now_ms())
    }

    fn health_at(&self, now: u64) -> Health {
        let since = self.failing_since_ms.load(Ordering::Relaxed);
        let last = self.last_failure_ms.load(Ordering::Relaxed);
        let ms = |s: f64| (s * 1000.0) as u64;
        if since != u64::MAX && now.saturating_sub(since) >= ms(FAILING_AFTER_S) && now.saturating_sub(last) < ms(STALLED_AFTER_S) {
            return Health::Failing;
        }
        if !self.source_ok.load(Ordering::Relaxed) {
            return Health::NoSource;
        }
        match self.last_processed_ms.load(Ordering::Relaxed) {
            u64::MAX => Health::Starting,
            t if now.saturating_sub(t) > ms(STALLED_AFTER_S) => Health::Stalled,
            _ => Health::Ok,
        }
    }

    /// Seconds since the last processed frame (`None` before the first).
    pub fn since_last_frame(&self) -> Option<f64> {
        let last = self.last_processed_ms.load(Ordering::Relaxed);
        (last != u64::MAX).then(|| (self.started.elapsed().as_millis() as u64).saturating_sub(last) as f64 / 1000.0)
    }

    pub fn snapshot(&self) -> Stats {
        let state = self.health();
        let alarms = crate::util::sync::lock(&self.alarms).clone();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            uptime_s: round_f64(self.uptime().as_secs_f64(), 10.0),
            fps: get(&self.fps_milli) as f64 / 1000.0,
            latency_ms: get(&self.last_latency_us) as f64 / 1000.0,
            captured: get(&self.captured),
            processed: get(&self.processed),
            dropped: get(&self.dropped),
            skipped: get(&self.skipped),
            bad_frames: get(&self.bad_frames),
            source_errors: get(&self.source_errors),
            output_dropped: get(&self.output_dropped),
            events_dropped: get(&self.events_dropped),
            swimmers: get(&self.swimmers),
            source_ok: self.source_ok.load(Ordering::Relaxed),
            state,
            error: (state == Health::Failing).then(|| crate::util::sync::lock(&self.last_error).clone()).flatten(),
            alarm: alarms.iter().map(|a| a.state).max().unwrap_or(Level::Clear),
            alarms,
        }
    }
}

/// Frames per second over a sliding window of snapshots.
pub struct RateMeter {
    last: Option<(Instant, u64)>,
    fps: f64,
}

impl Default for RateMeter {
    fn default() -> Self {
        RateMeter { last: None, fps: 0.0 }
    }
}

impl RateMeter {
    /// Updates from the processed counter at most once a second; returns the current rate.
    pub fn update(&mut self, processed: u64) -> f64 {
        let now = Instant::now();
        match self.last {
            None => self.last = Some((now, processed)),
            Some((t, n)) => {
                let dt = now.duration_since(t).as_secs_f64();
                if dt >= 1.0 {
                    self.fps = round_f64((processed.saturating_sub(n)) as f64 / dt, 10.0);
                    self.last = Some((now, processed));
                }
            }
        }
        self.fps
    }
}

impl Stats {
    /// systemd's status line (`systemctl status`): what is wrong first (no camera, no frames, every frame
    /// failing and why), then the rates.
    pub fn status_line(&self) -> String {
        let counts = format!("{:.1} fps, {} swimmers, {} dropped", self.fps, self.swimmers, self.dropped);
        // A swimmer not moving comes first while frames flow; when they do not, what is wrong with the
        // pipeline comes first (the alarm, raised on the last frames seen, after it).
        let alarm = self.alarms.iter().max_by_key(|a| a.state).map(|a| {
            let place = match (a.lane, a.distance_m) {
                (Some(l), Some(d)) => format!("lane {l} at {d:.0} m"),
                _ => format!("at x {:.0} y {:.0}", (a.bbox[0] + a.bbox[2]) / 2.0, (a.bbox[1] + a.bbox[3]) / 2.0),
            };
            format!("{}: swimmer still {:.0} s, {place}", a.state.as_str().to_uppercase(), a.still_s)
        });
        let line = match (&self.error, self.state) {
            (Some(e), _) => format!("failing: {e}"),
            (None, Health::Ok) => return alarm.map_or(counts.clone(), |a| format!("{a}; {counts}")),
            (None, state) => format!("{}: {counts}", state.as_str()),
        };
        match alarm {
            Some(a) => format!("{line}; {a}"),
            None => line,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_names_a_state_that_is_not_ok() {
        let mut s = Stats { fps: 24.96, swimmers: 2, dropped: 3, state: Health::Ok, ..Stats::default() };
        assert_eq!(s.status_line(), "25.0 fps, 2 swimmers, 3 dropped");
        s.state = Health::NoSource;
        assert_eq!(s.status_line(), "no_source: 25.0 fps, 2 swimmers, 3 dropped");
        s.state = Health::Stalled;
        assert!(s.status_line().starts_with("stalled: "));
        s.state = Health::Failing;
        s.error = Some("frame over max_pixels".into());
        assert_eq!(s.status_line(), "failing: frame over max_pixels");
    }

    #[test]
    fn status_line_puts_an_alarm_first_while_frames_flow_and_after_the_state_when_not() {
        let a = AlarmEvent { state: Level::Alarm, track: 4, ts: 1.0, still_s: 11.2, bbox: [0.0; 4], lane: Some(2), distance_m: Some(21.3), reason: None };
        let w = AlarmEvent { state: Level::Warning, lane: None, distance_m: None, bbox: [10.0, 20.0, 30.0, 40.0], ..a.clone() };
        let mut s = Stats { fps: 25.0, swimmers: 2, state: Health::Ok, alarm: Level::Alarm, alarms: vec![w, a], ..Stats::default() };
        assert_eq!(s.status_line(), "ALARM: swimmer still 11 s, lane 2 at 21 m; 25.0 fps, 2 swimmers, 0 dropped");
        s.state = Health::NoSource;
        assert_eq!(s.status_line(), "no_source: 25.0 fps, 2 swimmers, 0 dropped; ALARM: swimmer still 11 s, lane 2 at 21 m");
        s.alarms.remove(1);
        s.state = Health::Ok;
        assert_eq!(s.status_line(), "WARNING: swimmer still 11 s, at x 20 y 30; 25.0 fps, 2 swimmers, 0 dropped");
    }

    #[test]
    fn health_tells_failing_frames_from_no_frames() {
        let m = Metrics::default();
        m.source_ok.store(true, Ordering::Relaxed);
        assert_eq!(m.health_at(0), Health::Starting);
        // Frames fail from the start: starting for 5 s, then failing while they keep failing.
        m.frame_failed(&"the mask image cannot be read");
        m.failing_since_ms.store(1_000, Ordering::Relaxed);
        m.last_failure_ms.store(5_900, Ordering::Relaxed);
        assert_eq!(m.health_at(5_950), Health::Starting);
        assert_eq!(m.health_at(6_000), Health::Failing);
        // Then nothing comes at all: not failing any more, nothing processed yet.
        assert_eq!(m.health_at(10_900), Health::Starting);
        // A good frame ends the streak; no frame for 5 s after it is a stall.
        m.frame_done(0.01, 0);
        m.last_processed_ms.store(11_000, Ordering::Relaxed);
        assert_eq!(m.health_at(12_000), Health::Ok);
        assert_eq!(m.health_at(16_001), Health::Stalled);
        m.source_ok.store(false, Ordering::Relaxed);
        assert_eq!(m.health_at(12_000), Health::NoSource);
    }

    #[test]
    fn the_reason_is_in_the_stats_only_while_failing_and_is_bounded() {
        let m = Metrics::default();
        m.frame_failed(&"x".repeat(10_000));
        assert_eq!(m.snapshot().error, None, "one failure is not yet failing");
        assert_eq!(m.snapshot().bad_frames, 1);
        // Pretend the streak began 5 s before a failure that just happened.
        let now = m.now_ms() + 5_000;
        m.last_failure_ms.store(now, Ordering::Relaxed);
        assert_eq!(m.health_at(now), Health::Failing);
        let e = crate::util::sync::lock(&m.last_error).clone().unwrap();
        assert_eq!(e.len(), 303);
        assert!(e.ends_with("..."));
    }
}
