//! Calibration: runs a model over held-out empty frames, measures the per-pixel error statistics and
//! the thresholds, and stores them in the model file so the device needs nothing else.

use crate::detect::DetectError;
use crate::heatmap::{Calibrator, HeatmapSettings};
use crate::model::infer::read_proto;
use crate::model::onnx::write_proto;
use crate::model::{Autoencoder, Calibration, ModelError, ModelMeta};
use crate::pool::PoolSettings;
use crate::preprocess::Preprocessor;
use image::RgbImage;
use std::path::Path;

/// The default quantile of the empty frames' peaks the thresholds sit at (1 = above the highest).
pub const DEFAULT_QUANTILE: f32 = 1.0;

/// The heatmap smoothing a calibration measures with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Blur {
    /// The settings' `blur_sigma`.
    AsSet,
    /// Chosen from the camera's noise grain ([`crate::heatmap::blur_for_grain`]).
    Auto,
}

/// Measures a calibration on empty frames, each with its pool mask from `pool`.
pub fn calibrate<'a>(
    model: &mut Autoencoder,
    frames: impl IntoIterator<Item = &'a RgbImage>,
    pool: &PoolSettings,
    settings: HeatmapSettings,
    blur: Blur,
    quantile: f32,
) -> Result<Option<Calibration>, DetectError> {
    let (w, h) = model.size();
    let mut pre = Preprocessor::new(w, h, model.meta().preprocess.clone());
    let mut cal = Calibrator::new(w, h, settings);
    let mut cached: Option<((u32, u32), Vec<f32>)> = None;
    for img in frames {
        if cached.as_ref().is_none_or(|(d, _)| *d != img.dimensions()) {
            cached = Some((img.dimensions(), pool.model_mask(img, w, h)?));
        }
        let Some((_, m)) = &cached else { continue };
        let input = pre.run(img);
        let recon = model.reconstruct(input)?;
        cal.add(input, recon, m);
    }
    let portable = !matches!(pool.mask, crate::pool::MaskSpec::Image(_));
    let cal = match blur {
        Blur::AsSet => cal.finish(quantile),
        Blur::Auto => cal.finish_auto(quantile),
    };
    Ok(cal.map(|c| Calibration { pool: portable.then(|| pool.clone()), ..c }))
}

/// Rewrites a model file with a new calibration (everything else unchanged).
pub fn store_calibration(path: &Path, cal: Calibration) -> Result<(), ModelError> {
    let mut proto = read_proto(path)?;
    let mut meta = ModelMeta::from_proto(path, &proto)?;
    meta.calibration = Some(cal);
    proto.metadata_props = meta.to_props();
    write_proto(path, &proto)
}
