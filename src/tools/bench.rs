//! The benchmark behind `poolwatch bench`: synthetic frames, JPEG-encoded as a camera would send them,
//! through every stage (decode, pre-process, inference, heatmap, boxes, output record), with per-stage
//! medians and 99th percentiles, frames per second and peak resident memory.

use crate::device::report::{BoxRecord, FrameRecord};
use crate::pipeline::detect::{Detector, DetectorSettings};
use crate::pipeline::model::Autoencoder;
use crate::media::images::decode_rgb;
use crate::synth::Scene;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Barrier;
use std::time::Instant;

pub const STAGES: [&str; 6] = ["decode", "preprocess", "infer", "heatmap", "boxes", "outputs"];

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub model: String,
    /// The tract runtime the model ran on: "cpu" or "cuda".
    pub runtime: String,
    /// The model file's networks that ran each frame.
    pub networks: usize,
    pub frames: usize,
    pub threads: usize,
    pub size: String,
    /// Median milliseconds of inference alone.
    pub infer_ms: f64,
    /// Median milliseconds of the whole pipeline per frame.
    pub pipeline_ms: f64,
    /// Median milliseconds of the detection thread's work per frame: the pipeline without the JPEG
    /// decode, which the daemon does on its capture thread (and a YUYV camera does not need).
    pub detector_ms: f64,
    /// Frames per second of the whole pipeline, all threads together (timed frames over wall time).
    pub fps: f64,
    /// Median milliseconds per stage.
    pub stages: BTreeMap<String, f64>,
    /// 99th percentile milliseconds per stage.
    pub p99: BTreeMap<String, f64>,
    pub pipeline_p99_ms: f64,
    /// Peak resident memory of the process, MB (Linux), if known.
    pub peak_rss_mb: Option<f64>,
}

fn percentile(v: &mut [f64], q: f64) -> f64 {
    crate::util::stats::quantile_f64(v, q).unwrap_or(0.0)
}

/// Peak resident set size from /proc/self/status (VmHWM), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// What one thread measured.
#[derive(Default)]
struct Samples {
    stages: BTreeMap<&'static str, Vec<f64>>,
    totals: Vec<f64>,
    detector: Vec<f64>,
}

/// Runs frames `first, first + step, ...` below `warmup + frames` through the whole pipeline on this
/// thread; the first `warmup` of them (counted over all threads) are not timed. `ready` is waited on
/// once the warm-up is done, so that the threads' timed parts start together.
fn pipeline(det: &mut Detector, encoded: &[Vec<u8>], range: (usize, usize, usize), warmup: usize, ready: &Barrier) -> Result<Samples, crate::pipeline::detect::DetectError> {
    let (first, step, end) = range;
    let mut s = Samples { stages: STAGES.iter().map(|s| (*s, Vec::new())).collect(), ..Samples::default() };
    let mut sink: Vec<u8> = Vec::with_capacity(4096);
    let mut waited = false;
    let mut result = Ok(());
    for i in (first..end).step_by(step) {
        if i >= warmup && !waited {
            ready.wait();
            waited = true;
        }
        let t0 = Instant::now();
        let img = match decode_rgb(&encoded[i % encoded.len()]) {
            Ok(img) => img,
            Err(e) => {
                result = Err(crate::pipeline::detect::DetectError::Model(crate::pipeline::model::ModelError::Run(e)));
                break;
            }
        };
        let t1 = Instant::now();
        let d = match det.detect(&img) {
            Ok(d) => d,
            Err(e) => {
                result = Err(e);
                break;
            }
        };
        let t2 = Instant::now();
        sink.clear();
        let rec = FrameRecord {
            frame: i as u64,
            ts: 0.0,
            image: "bench",
            width: d.width,
            height: d.height,
            boxes: d.boxes.iter().map(BoxRecord::from).collect(),
            ms: d.timings.total,
            swimmers: &[],
            lanes: &[],
            laps: &[],
            alarms: &[],
        };
        let _ = serde_json::to_writer(&mut sink, &rec);
        let t3 = Instant::now();
        if i < warmup {
            continue;
        }
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        for (stage, v) in [
            ("decode", ms(t0, t1)),
            ("preprocess", d.timings.preprocess),
            ("infer", d.timings.infer),
            ("heatmap", d.timings.heatmap),
            ("boxes", d.timings.boxes),
            ("outputs", ms(t2, t3)),
        ] {
            if let Some(v2) = s.stages.get_mut(stage) {
                v2.push(v);
            }
        }
        s.totals.push(ms(t0, t3));
        s.detector.push(ms(t1, t3));
    }
    if !waited {
        // Every thread must reach the barrier once, or the others wait forever.
        ready.wait();
    }
    result.map(|_| s)
}

/// Runs the benchmark: `frames` timed frames of `width` x `height` after a few warm-up frames, on
/// `threads` threads that each run the whole pipeline on every `threads`-th frame with a detector of
/// their own (as the daemon's detection workers do; the model's plan is shared). Stage times are per
/// frame; frames per second count all threads together.
pub fn run(model: Autoencoder, label: &str, threads: usize, frames: usize, width: u32, height: u32) -> Result<BenchReport, crate::pipeline::detect::DetectError> {
    let threads = threads.max(1);
    let scene = Scene::new(1, width, height, (1, 4));
    // A few distinct frames, JPEG-encoded once (the camera's work), decoded in the loop (ours).
    let encoded: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let (img, _) = scene.render(i as f32 * 0.37, i);
            let mut buf = Vec::new();
            let _ = img.write_to(&mut std::io::Cursor::new(&mut buf), image::ImageFormat::Jpeg);
            buf
        })
        .collect();
    let runtime = model.runtime();
    let networks = model.networks();
    let mut dets = Detector::new(model, &DetectorSettings::default()).with_forks(threads)?;
    let warmup = 5 * threads;
    let end = warmup + frames;
    // The main thread waits at the barrier too, to start the clock when the warm-up is over.
    let ready = Barrier::new(threads + 1);
    let (results, wall) = std::thread::scope(|scope| {
        let handles: Vec<_> = dets
            .iter_mut()
            .enumerate()
            .map(|(k, det)| {
                let (encoded, ready) = (&encoded, &ready);
                scope.spawn(move || pipeline(det, encoded, (k, threads, end), warmup, ready))
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (results, start.elapsed().as_secs_f64())
    });
    let mut samples: BTreeMap<&str, Vec<f64>> = STAGES.iter().map(|s| (*s, Vec::with_capacity(frames))).collect();
    let mut totals = Vec::with_capacity(frames);
    let mut detector = Vec::with_capacity(frames);
    for r in results {
        let s = r.map_err(|_| crate::pipeline::detect::DetectError::Crashed("a benchmark thread panicked".into()))??;
        for (k, v) in s.stages {
            samples.entry(k).or_default().extend(v);
        }
        totals.extend(s.totals);
        detector.extend(s.detector);
    }
    let mut stages = BTreeMap::new();
    let mut p99 = BTreeMap::new();
    for (k, v) in &mut samples {
        stages.insert(k.to_string(), percentile(v, 0.5));
        p99.insert(k.to_string(), percentile(v, 0.99));
    }
    Ok(BenchReport {
        model: label.to_string(),
        runtime: runtime.to_string(),
        networks,
        frames,
        threads,
        size: format!("{width}x{height}"),
        infer_ms: stages["infer"],
        pipeline_ms: percentile(&mut totals.clone(), 0.5),
        pipeline_p99_ms: percentile(&mut totals, 0.99),
        detector_ms: percentile(&mut detector, 0.5),
        fps: if wall > 0.0 { totals.len() as f64 / wall } else { 0.0 },
        stages,
        p99,
        peak_rss_mb: peak_rss_mb(),
    })
}
