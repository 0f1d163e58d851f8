//! The int8 model beside a float one: quantised on training frames, calibrated on held-out frames,
//! and compared with the float model (reconstruction agreement and speed, measured in one run).

use super::error::TrainError;
use crate::train::calibrate::{Blur, DEFAULT_QUANTILE, calibrate, store_calibration};
use crate::train::quant::quantize_file;
use crate::pipeline::model::Autoencoder;
use crate::pipeline::pool::PoolSettings;
use crate::pipeline::preprocess::Preprocessor;
use image::RgbImage;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How the int8 model compares with the float one.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Int8Report {
    pub path: PathBuf,
    /// Median milliseconds per frame in tract, same frame, same run.
    pub float_ms: f64,
    pub int8_ms: f64,
    pub speedup: f64,
    /// Reconstruction differences on held-out frames, in [0,1] pixel units.
    pub max_abs_diff: f32,
    pub mean_abs_diff: f32,
}

/// `M.int8.onnx` beside `M.onnx`.
pub fn int8_path(float: &Path) -> PathBuf {
    float.with_extension("int8.onnx")
}

fn median_ms(model: &mut Autoencoder, input: &[f32], runs: usize) -> Result<f64, TrainError> {
    model.reconstruct(input)?;
    let mut t = Vec::with_capacity(runs);
    for _ in 0..runs {
        let s = Instant::now();
        model.reconstruct(input)?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    Ok(crate::util::stats::median_f64(&mut t).unwrap_or(0.0))
}

/// Quantises `float` into `out` using `calib` frames for activation ranges, calibrates it on `val`,
/// and measures it against the float model.
pub fn make_int8(float: &Path, out: &Path, calib: &[&RgbImage], val: &[&RgbImage], pool: &PoolSettings) -> Result<Int8Report, TrainError> {
    let mut fm = Autoencoder::load(float)?;
    let (w, h) = fm.size();
    let mut pre = Preprocessor::new(w, h, fm.meta().preprocess.clone());
    let inputs: Vec<Vec<f32>> = calib.iter().take(32).map(|img| pre.run(img).to_vec()).collect();
    quantize_file(float, out, &inputs)?;
    let mut qm = Autoencoder::load(out)?;
    let heatmap = fm.meta().calibration.as_ref().map(|c| c.heatmap.clone()).unwrap_or_default();
    let cal = calibrate(&mut qm, val.iter().copied(), pool, heatmap, Blur::AsSet, DEFAULT_QUANTILE)?
        .ok_or_else(|| TrainError::Settings("no held-out frame to calibrate the int8 model on".into()))?;
    store_calibration(out, cal)?;
    let mut qm = Autoencoder::load(out)?;
    let (mut max, mut sum, mut n) = (0.0f32, 0.0f64, 0usize);
    for img in val.iter().take(8) {
        let x = pre.run(img).to_vec();
        let a = fm.reconstruct(&x)?.to_vec();
        let b = qm.reconstruct(&x)?;
        for (p, q) in a.iter().zip(b) {
            let d = (p - q).abs();
            max = max.max(d);
            sum += d as f64;
            n += 1;
        }
    }
    let x = pre.run(val.first().copied().or(calib.first().copied()).ok_or_else(|| TrainError::Settings("no frames".into()))?).to_vec();
    let float_ms = median_ms(&mut fm, &x, 15)?;
    let int8_ms = median_ms(&mut qm, &x, 15)?;
    let r = Int8Report {
        path: out.to_path_buf(),
        float_ms,
        int8_ms,
        speedup: float_ms / int8_ms.max(1e-9),
        max_abs_diff: max,
        mean_abs_diff: (sum / n.max(1) as f64) as f32,
    };
    log::info!(
        "int8 model {}: {:.2} ms vs float {:.2} ms ({:.2}x); reconstruction differs by {:.4} on average, {:.3} at most",
        out.display(),
        r.int8_ms,
        r.float_ms,
        r.speedup,
        r.mean_abs_diff,
        r.max_abs_diff
    );
    Ok(r)
}
