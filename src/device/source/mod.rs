//! Frame sources: one trait, so a camera, a directory of images, a pipe or the synthetic pool are
//! interchangeable to everything downstream; [`Reopening`] keeps a source alive through failures.

pub mod convert;
pub mod dir;
pub mod stream;
pub mod synth;
#[cfg(feature = "camera")]
pub mod v4l2;

use crate::util::setting::SettingError;
use crate::pipeline::frame::Frame;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// One frame could not be decoded; the source itself goes on.
    #[error("{origin}: cannot decode the image ({reason})")]
    Decode { origin: String, reason: String },
    /// The source cannot deliver frames now (camera unplugged, directory gone).
    #[error("{0}")]
    Unavailable(String),
    #[error("{path}: {reason}")]
    Path { path: PathBuf, reason: String },
}

impl From<crate::media::images::ImageError> for SourceError {
    fn from(e: crate::media::images::ImageError) -> Self {
        use crate::media::images::ImageError;
        match e {
            ImageError::Decode { origin, reason } => SourceError::Decode { origin, reason },
            ImageError::Gone(what) => SourceError::Unavailable(what),
            ImageError::Path { path, reason } => SourceError::Path { path, reason },
        }
    }
}

impl SourceError {
    /// Whether the stream can go on after this error (a bad frame, not a dead source).
    pub fn is_frame_error(&self) -> bool {
        matches!(self, SourceError::Decode { .. })
    }
}

/// Something that produces frames. `Ok(None)` is the end of a finite stream.
pub trait FrameSource: Send {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;

    /// A short human description for logs.
    fn describe(&self) -> String;
}

/// Delivers no faster than a frame rate, as a camera would.
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(fps: f64) -> Pacer {
        Pacer { interval: Duration::from_secs_f64(1.0 / fps.max(1e-3)), next: None }
    }

    /// Sleeps until the next frame is due.
    pub fn wait(&mut self) {
        let now = Instant::now();
        let due = self.next.unwrap_or(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        // Late frames do not bunch up: the schedule restarts from now when we fell behind.
        self.next = Some(due.max(now.checked_sub(self.interval).unwrap_or(now)) + self.interval);
    }
}

fn d_seed() -> u64 {
    1
}
fn d_width() -> u32 {
    640
}
fn d_height() -> u32 {
    480
}
fn d_fps() -> f64 {
    25.0
}
fn d_swimmers() -> String {
    "1..4".into()
}
fn d_device() -> String {
    "/dev/video0".into()
}
fn d_timeout() -> u64 {
    2000
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// MJPEG when the camera offers it at the size, else YUYV.
    #[default]
    Auto,
    Mjpeg,
    Yuyv,
}

/// Where frames come from (`[source]` in the config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceSettings {
    /// The synthetic pool camera.
    Synth {
        #[serde(default = "d_seed")]
        seed: u64,
        #[serde(default = "d_width")]
        width: u32,
        #[serde(default = "d_height")]
        height: u32,
        #[serde(default = "d_fps")]
        fps: f64,
        /// Swimmers in the scene, "A..B".
        #[serde(default = "d_swimmers")]
        swimmers: String,
        /// The first swimmer stops and floats, "FROM+SECONDS" (seconds since the source opened).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop: Option<String>,
    },
    /// A V4L2 camera (builds with the `camera` feature).
    Camera {
        #[serde(default = "d_device")]
        device: String,
        #[serde(default = "d_width")]
        width: u32,
        #[serde(default = "d_height")]
        height: u32,
        #[serde(default = "d_fps")]
        fps: f64,
        #[serde(default)]
        format: PixelFormat,
        /// A frame must come within this many milliseconds, else the camera is reopened.
        #[serde(default = "d_timeout")]
        timeout_ms: u64,
    },
    /// Image files: directories, files or glob patterns, in name order.
    Dir {
        path: Vec<String>,
        /// Frames per second to deliver at (0 = as fast as they decode).
        #[serde(default)]
        fps: f64,
        #[serde(default, rename = "loop")]
        looping: bool,
    },
    /// MJPEG or raw RGB24 frames on standard input.
    Stdin {
        format: stream::StreamFormat,
        /// Frame size, for raw RGB.
        #[serde(default)]
        width: u32,
        #[serde(default)]
        height: u32,
        #[serde(default)]
        fps: f64,
    },
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings::Synth { seed: d_seed(), width: d_width(), height: d_height(), fps: d_fps(), swimmers: d_swimmers(), stop: None }
    }
}

impl SourceSettings {
    /// Every key in its range (keys as the `[source]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        let bad = |k: &str, m: String| Err(SettingError::new(k, m));
        let size_ok = |w: u32, h: u32| (16..=8192).contains(&w) && (16..=8192).contains(&h);
        // The frame size and rate of a source that makes frames (a camera, the synthetic pool).
        let camera_like = |w: u32, h: u32, fps: f64| -> Result<(), SettingError> {
            if !size_ok(w, h) {
                return bad("width", format!("{w}x{h} must be within 16..=8192"));
            }
            if !(fps > 0.0 && fps <= 1000.0) {
                return bad("fps", format!("{fps} must be in (0, 1000]"));
            }
            Ok(())
        };
        match self {
            SourceSettings::Synth { width, height, fps, swimmers, stop, .. } => {
                camera_like(*width, *height, *fps)?;
                crate::synth::parse_range(swimmers).map_err(|e| SettingError::new("swimmers", e))?;
                if let Some(stop) = stop {
                    crate::synth::parse_stop(stop).map_err(|e| SettingError::new("stop", e))?;
                }
            }
            SourceSettings::Camera { device, width, height, fps, timeout_ms, .. } => {
                if !cfg!(feature = "camera") {
                    return bad("kind", "this build has no camera support: rebuild with `--features camera`".into());
                }
                if device.is_empty() {
                    return bad("device", "is empty".into());
                }
                camera_like(*width, *height, *fps)?;
                if !(100..=60_000).contains(timeout_ms) {
                    return bad("timeout_ms", format!("{timeout_ms} must be in 100..=60000"));
                }
            }
            SourceSettings::Dir { path, fps, .. } => {
                if path.is_empty() {
                    return bad("path", "needs at least one directory, file or pattern".into());
                }
                if !(0.0..=1000.0).contains(fps) {
                    return bad("fps", format!("{fps} must be in [0, 1000]"));
                }
            }
            SourceSettings::Stdin { format, width, height, fps } => {
                if *format == stream::StreamFormat::Rgb && !size_ok(*width, *height) {
                    return bad("width", format!("raw RGB needs width and height within 16..=8192, got {width}x{height}"));
                }
                if !(0.0..=1000.0).contains(fps) {
                    return bad("fps", format!("{fps} must be in [0, 1000]"));
                }
            }
        }
        Ok(())
    }

    /// Whether the stream ends by itself (files, a pipe), rather than being a camera that runs forever.
    /// The size of the frames this source makes, when the settings fix it (a camera, the synthetic
    /// pool, raw RGB on stdin).
    pub fn frame_size(&self) -> Option<(u32, u32)> {
        match self {
            SourceSettings::Synth { width, height, .. } => Some((*width, *height)),
            SourceSettings::Camera { width, height, .. } => Some((*width, *height)),
            SourceSettings::Stdin { format: stream::StreamFormat::Rgb, width, height, .. } => Some((*width, *height)),
            _ => None,
        }
    }

    /// The lanes this source knows by itself: the synthetic camera's pool (so the demo shows lanes,
    /// distances and laps with no `[lanes]`).
    pub fn known_lanes(&self) -> Option<crate::pipeline::lanes::LaneSettings> {
        match self {
            SourceSettings::Synth { seed, width, height, swimmers, .. } => {
                let range = crate::synth::parse_range(swimmers).ok()?;
                Some(crate::synth::Scene::new(*seed, *width, *height, range).lane_settings())
            }
            _ => None,
        }
    }

    pub fn is_finite(&self) -> bool {
        matches!(self, SourceSettings::Dir { looping: false, .. } | SourceSettings::Stdin { .. })
    }

    /// Opens the source. `first_seq` continues the numbering after a reopen.
    pub fn open(&self, first_seq: u64) -> Result<Box<dyn FrameSource>, SourceError> {
        Ok(match self {
            SourceSettings::Synth { seed, width, height, fps, swimmers, stop } => {
                let range = crate::synth::parse_range(swimmers).map_err(SourceError::Unavailable)?;
                let mut scene = crate::synth::Scene::new(*seed, *width, *height, range);
                if let Some(stop) = stop {
                    let (from, len) = crate::synth::parse_stop(stop).map_err(SourceError::Unavailable)?;
                    scene = scene.with_stop(from, len).0;
                }
                Box::new(synth::SynthSource::new(scene, *fps as f32, None).realtime().starting_at(first_seq))
            }
            #[cfg(feature = "camera")]
            SourceSettings::Camera { device, width, height, fps, format, timeout_ms } => Box::new(v4l2::CameraSource::open(
                device,
                (*width, *height),
                *fps,
                *format,
                Duration::from_millis(*timeout_ms),
                first_seq,
            )?),
            #[cfg(not(feature = "camera"))]
            SourceSettings::Camera { .. } => {
                return Err(SourceError::Unavailable("this build has no camera support: rebuild with `--features camera`".into()));
            }
            SourceSettings::Dir { path, fps, looping } => {
                let inputs: Vec<PathBuf> = path.iter().map(PathBuf::from).collect();
                Box::new(dir::DirSource::new(&inputs, *looping)?.paced(*fps).starting_at(first_seq))
            }
            SourceSettings::Stdin { format, width, height, fps } => {
                Box::new(stream::StreamSource::new(std::io::stdin(), *format, (*width, *height), "stdin").paced(*fps))
            }
        })
    }

    /// Makes relative paths relative to `base` (the config file's directory).
    pub fn rebase(&mut self, base: &std::path::Path) {
        if let SourceSettings::Dir { path, .. } = self {
            for p in path.iter_mut() {
                if std::path::Path::new(p.as_str()).is_relative() {
                    *p = base.join(&*p).to_string_lossy().into_owned();
                }
            }
        }
    }
}

/// A source that is reopened with back-off whenever it fails, so the daemon never exits for a
/// camera that vanishes. Finite sources still end.
pub struct Reopening {
    settings: SourceSettings,
    inner: Option<Box<dyn FrameSource>>,
    stop: Arc<AtomicBool>,
    next_seq: u64,
    backoff: crate::device::backoff::Backoff,
    /// Called with `true`/`false` as the source comes and goes.
    on_state: Box<dyn FnMut(bool) + Send>,
    failures: u64,
}

impl Reopening {
    pub fn new(settings: SourceSettings, stop: Arc<AtomicBool>, on_state: Box<dyn FnMut(bool) + Send>) -> Reopening {
        Reopening {
            settings,
            inner: None,
            stop,
            next_seq: 0,
            backoff: crate::device::backoff::Backoff::new(Duration::from_secs(10)),
            on_state,
            failures: 0,
        }
    }

    /// Opens `settings` and keeps it open. A source that ends by itself (files, a pipe) must open now:
    /// a typo in a path is the user's error, returned. A live one (a camera) may be unplugged at
    /// start; that is logged and it is retried like any outage.
    pub fn start(settings: SourceSettings, stop: Arc<AtomicBool>, on_state: Box<dyn FnMut(bool) + Send>) -> Result<Reopening, SourceError> {
        let first = match settings.open(0) {
            Ok(s) => Some(s),
            Err(e) if settings.is_finite() => return Err(e),
            Err(e) => {
                log::warn!("source: {e}; will keep trying");
                None
            }
        };
        let reopening = Reopening::new(settings, stop, on_state);
        Ok(match first {
            Some(s) => reopening.with_opened(s),
            None => reopening,
        })
    }

    /// Whether a source is open now.
    pub fn is_open(&self) -> bool {
        self.inner.is_some()
    }

    /// Starts with a source that is already open.
    pub fn with_opened(mut self, source: Box<dyn FrameSource>) -> Self {
        log::info!("source: {}", source.describe());
        self.inner = Some(source);
        self
    }

    /// Times the source failed and had to be reopened.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Sleeps `d`, waking early when a stop is asked for.
    fn pause(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
        }
    }

    fn fail(&mut self, what: &str, e: &SourceError) {
        let d = self.backoff.next_delay();
        log::warn!("source {what}: {e}; retrying in {:.1} s", d.as_secs_f64());
        self.inner = None;
        self.failures += 1;
        (self.on_state)(false);
        self.pause(d);
    }
}

impl FrameSource for Reopening {
    /// The next frame; blocks through outages until the source is back or a stop is asked for
    /// (then `Ok(None)`).
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            if self.inner.is_none() {
                match self.settings.open(self.next_seq) {
                    Ok(s) => {
                        log::info!("source: {}", s.describe());
                        self.inner = Some(s);
                        (self.on_state)(true);
                    }
                    Err(e) => {
                        self.fail("cannot open", &e);
                        continue;
                    }
                }
            }
            let Some(src) = self.inner.as_mut() else { continue };
            match src.next_frame() {
                Ok(Some(f)) => {
                    self.next_seq = f.seq + 1;
                    self.backoff.reset();
                    return Ok(Some(f));
                }
                Ok(None) if self.settings.is_finite() => return Ok(None),
                Ok(None) => {
                    let e = SourceError::Unavailable("the stream ended".into());
                    self.fail("ended", &e);
                }
                Err(e) if e.is_frame_error() => {
                    self.next_seq += 1;
                    return Err(e);
                }
                Err(e) => self.fail("failed", &e),
            }
        }
    }

    fn describe(&self) -> String {
        self.inner.as_ref().map(|s| s.describe()).unwrap_or_else(|| format!("{:?}", self.settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_settings_parse_with_defaults_and_refuse_unknown_keys() {
        let s: SourceSettings = toml::from_str("kind = \"dir\"\npath = [\"a\", \"b/*.jpg\"]\nloop = true").unwrap();
        assert_eq!(s, SourceSettings::Dir { path: vec!["a".into(), "b/*.jpg".into()], fps: 0.0, looping: true });
        let s: SourceSettings = toml::from_str("kind = \"synth\"\nfps = 10.0").unwrap();
        assert!(matches!(s, SourceSettings::Synth { fps, width: 640, .. } if fps == 10.0));
        assert!(toml::from_str::<SourceSettings>("kind = \"synth\"\nfsp = 10.0").is_err());
        assert!(toml::from_str::<SourceSettings>("kind = \"webcam\"").is_err());
        let s: SourceSettings = toml::from_str("kind = \"stdin\"\nformat = \"rgb\"").unwrap();
        assert_eq!(s.validate().unwrap_err().key, "width");
    }

    #[test]
    fn a_directory_that_vanishes_is_reopened_when_it_returns() {
        let d = tempfile::tempdir().unwrap();
        let frames = d.path().join("frames");
        std::fs::create_dir(&frames).unwrap();
        image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])).save(frames.join("a.png")).unwrap();
        let settings = SourceSettings::Dir { path: vec![frames.to_string_lossy().into()], fps: 0.0, looping: true };
        let states = Arc::new(std::sync::Mutex::new(Vec::new()));
        let st = Arc::clone(&states);
        let mut src = Reopening::new(settings, Arc::new(AtomicBool::new(false)), Box::new(move |ok| st.lock().unwrap().push(ok)));
        assert_eq!(src.next_frame().unwrap().unwrap().seq, 0);
        let away = d.path().join("away");
        std::fs::rename(&frames, &away).unwrap();
        let back = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::rename(&away, &frames).unwrap();
        });
        let f = src.next_frame().unwrap().unwrap();
        back.join().unwrap();
        assert_eq!(f.seq, 1, "numbering continues");
        assert!(src.failures() >= 1);
        assert_eq!(states.lock().unwrap().first(), Some(&true));
        assert!(states.lock().unwrap().contains(&false));
    }

    #[test]
    fn pacer_spaces_frames() {
        let mut p = Pacer::new(50.0);
        let t = Instant::now();
        for _ in 0..4 {
            p.wait();
        }
        // Three intervals of 20 ms after the first frame; generous upper bound for slow machines.
        let e = t.elapsed().as_secs_f64();
        assert!(e >= 0.059, "{e}");
    }
}
