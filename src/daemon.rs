//! The running detector: frames from a source through the detector, one JSON line per processed frame
//! to an output, until the source ends or a stop is asked for (SIGTERM/SIGINT).

use crate::detect::{BoxRecord, Detector};
use crate::source::FrameSource;
use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The JSON line `poolwatch run` prints per frame: `detect`'s record plus `frame` and `ts`.
#[derive(Clone, Debug, Serialize)]
pub struct FrameRecord {
    pub frame: u64,
    pub ts: f64,
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BoxRecord>,
    pub ms: f64,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub processed: u64,
    pub bad_frames: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("frame source: {0}")]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Detect(#[from] crate::detect::DetectError),
}

/// Runs until the source ends, `max_frames` are processed, `stop` is set, or the output is closed.
/// Frames that cannot be decoded are logged and skipped.
pub fn run(
    source: &mut dyn FrameSource,
    detector: &mut Detector,
    out: &mut dyn Write,
    stop: &AtomicBool,
    max_frames: Option<u64>,
) -> Result<RunStats, RunError> {
    let mut stats = RunStats::default();
    log::info!("running on {}", source.describe());
    while !stop.load(Ordering::Relaxed) && max_frames.is_none_or(|m| stats.processed < m) {
        let frame = match source.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.is_frame_error() => {
                log::warn!("skipping a frame: {e}");
                stats.bad_frames += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let d = detector.detect(&frame.image)?;
        let rec = FrameRecord {
            frame: frame.seq,
            ts: (frame.unix_ts() * 1000.0).round() / 1000.0,
            image: frame.origin.clone(),
            width: d.width,
            height: d.height,
            boxes: d.boxes.iter().map(BoxRecord::from).collect(),
            ms: (d.timings.total * 100.0).round() / 100.0,
        };
        let line = serde_json::to_string(&rec).unwrap_or_default();
        if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
            log::info!("output closed: stopping");
            break;
        }
        stats.processed += 1;
    }
    log::info!("stopped after {} frames ({} unreadable)", stats.processed, stats.bad_frames);
    Ok(stats)
}
