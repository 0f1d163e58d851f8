//! The benchmark behind `poolwatch bench`: synthetic frames, JPEG-encoded as a camera would send them,
//! through every stage (decode, pre-process, inference, heatmap, boxes, output record), with per-stage
//! medians and 99th percentiles, frames per second and peak resident memory.

use crate::config::Config;
use crate::report::FrameRecord;
use crate::detect::{BoxRecord, Detector};
use crate::model::Autoencoder;
use crate::source::dir::decode_rgb;
use crate::synth::Scene;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

pub const STAGES: [&str; 6] = ["decode", "preprocess", "infer", "heatmap", "boxes", "outputs"];

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub model: String,
    /// The tract runtime the model ran on: "cpu" or "cuda".
    pub runtime: String,
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
    /// Frames per second of the whole pipeline (from the mean).
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
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Peak resident set size from /proc/self/status (VmHWM), in MB.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark: `frames` timed frames of `width` x `height` after a few warm-up frames.
pub fn run(model: Autoencoder, label: &str, threads: usize, frames: usize, width: u32, height: u32) -> Result<BenchReport, crate::detect::DetectError> {
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
    let mut det = Detector::new(model, &Config::default());
    let mut samples: BTreeMap<&str, Vec<f64>> = STAGES.iter().map(|s| (*s, Vec::with_capacity(frames))).collect();
    let mut totals = Vec::with_capacity(frames);
    let mut detector = Vec::with_capacity(frames);
    let mut sink: Vec<u8> = Vec::with_capacity(4096);
    let warmup = 5;
    for i in 0..frames + warmup {
        let t0 = Instant::now();
        let img = match decode_rgb(&encoded[i % encoded.len()]) {
            Ok(img) => img,
            Err(e) => return Err(crate::detect::DetectError::Model(crate::model::ModelError::Run(e))),
        };
        let t1 = Instant::now();
        let d = det.detect(&img)?;
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
            if let Some(s) = samples.get_mut(stage) {
                s.push(v);
            }
        }
        totals.push(ms(t0, t3));
        detector.push(ms(t1, t3));
    }
    let mean = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
    let mut stages = BTreeMap::new();
    let mut p99 = BTreeMap::new();
    for (k, v) in &mut samples {
        stages.insert(k.to_string(), percentile(v, 0.5));
        p99.insert(k.to_string(), percentile(v, 0.99));
    }
    Ok(BenchReport {
        model: label.to_string(),
        runtime: runtime.to_string(),
        frames,
        threads,
        size: format!("{width}x{height}"),
        infer_ms: stages["infer"],
        pipeline_ms: percentile(&mut totals.clone(), 0.5),
        pipeline_p99_ms: percentile(&mut totals, 0.99),
        detector_ms: percentile(&mut detector, 0.5),
        fps: if mean > 0.0 { 1000.0 / mean } else { 0.0 },
        stages,
        p99,
        peak_rss_mb: peak_rss_mb(),
    })
}
