//! `poolwatch-train calibrate`: a model's calibration measured again on other empty frames.

use crate::args::{BlurArg, MaskArgs, parse_blur, parse_brightness_weight};
use anyhow::{Context, Result};
use poolwatch::pipeline::heatmap::{HeatmapOverrides, HeatmapSettings};
use poolwatch::pipeline::model::Autoencoder;
use poolwatch::pipeline::pool::PoolSettings;
use poolwatch::train::calibrate::{Blur, DEFAULT_QUANTILE, REFERENCE_BLUR, calibrate, store_calibration};
use poolwatch::train::dataset::{Dataset, DatasetSpec};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    #[arg(long, required = true, num_args = 1..)]
    normal: Vec<PathBuf>,
    /// Heatmap smoothing in model pixels, or auto: chosen from the camera's noise grain.
    #[arg(long, default_value = "auto", value_parser = parse_blur)]
    blur_sigma: BlurArg,
    /// Weight of brightness error against colour error in the heatmap (1: plain squared error);
    /// without it, the model's own setting stays (1 for models calibrated before it existed).
    #[arg(long, value_parser = parse_brightness_weight)]
    brightness_weight: Option<f32>,
    /// Weight of the error of whitish pixels (bubbles, foam, glints), 0..1 (1: off); without it, the
    /// model's own setting stays.
    #[arg(long)]
    white_weight: Option<f32>,
    #[command(flatten)]
    mask: MaskArgs,
}

pub fn main(a: Args) -> Result<()> {
    let pool = a.mask.pool()?;
    if let Some(w) = a.white_weight {
        let overrides = HeatmapOverrides { white_weight: Some(w), ..Default::default() };
        overrides.validate().map_err(|e| anyhow::anyhow!("--{}: {}", e.key.replace('_', "-"), e.message))?;
    }
    // Each network of the file is calibrated on its own.
    poolwatch::train::networks::each_network(&a.model, &a.model, |src, out| -> Result<()> {
        let mut model = Autoencoder::load(src)?;
        let mut heatmap = model.meta().calibration.as_ref().map(|c| c.heatmap.clone()).unwrap_or_default();
        heatmap.brightness_weight = a.brightness_weight.unwrap_or(heatmap.brightness_weight);
        heatmap.white_weight = a.white_weight.unwrap_or(heatmap.white_weight);
        if src != out {
            std::fs::copy(src, out).with_context(|| format!("cannot write {}", out.display()))?;
        }
        recalibrate(out, &mut model, &a.normal, &pool, a.blur_sigma.0, heatmap)
    })
}

fn recalibrate(path: &Path, model: &mut Autoencoder, normal: &[PathBuf], pool: &PoolSettings, blur_sigma: Option<f32>, mut heatmap: HeatmapSettings) -> Result<()> {
    heatmap.blur_sigma = blur_sigma.unwrap_or(REFERENCE_BLUR);
    let blur = if blur_sigma.is_some() { Blur::AsSet } else { Blur::Auto };
    // Frames at their own size, as training's held-out frames are: the same frames give the same calibration.
    let spec = DatasetSpec { normal: normal.to_vec(), inpaint: vec![], footage: vec![], footage_settings: Default::default(), footage_found: Default::default(), mask: pool.mask.clone(), val_fraction: 0.0, max_size: (u32::MAX, u32::MAX) };
    let data = Dataset::load(&spec)?;
    let frames: Vec<_> = data.train.iter().chain(&data.val).map(|s| s.image.clone()).collect();
    let cal = calibrate(model, &frames, pool, heatmap, blur, DEFAULT_QUANTILE)?.context("no frames to calibrate on")?;
    log::info!(
        "threshold {:.3} (standardised), {:.5} (raw), heatmap smoothing {:.1} px, noise grain {:.3} % of the frame, from {} frames",
        cal.threshold,
        cal.raw_threshold,
        cal.heatmap.blur_sigma,
        cal.noise_area.unwrap_or(0.0) * 100.0,
        cal.frames
    );
    store_calibration(path, cal)?;
    Ok(())
}
