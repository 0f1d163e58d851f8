//! `poolwatch detect`: images in, one JSON line per image out.

use crate::common::{Usage, load_config, one_line, usage};
use anyhow::{Context, Result};
use image::RgbImage;
use poolwatch::device::report::ImageRecord;
use poolwatch::media::images::{image_paths, load_rgb};
use poolwatch::pipeline::detect::{Detection, Detector};
use poolwatch::pipeline::model::Autoencoder;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The ONNX model (defaults to the config's `model`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A TOML config (pool mask, heatmap and box settings).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also write each image annotated with its heatmap and boxes into this directory.
    #[arg(long)]
    annotate: Option<PathBuf>,
    /// Images or directories.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

pub fn main(a: Args) -> Result<ExitCode, Usage> {
    let cfg = load_config(a.config.as_deref()).map_err(Usage)?;
    let model_path = a.model.or(cfg.model.clone()).ok_or_else(|| Usage::msg("no model: give --model FILE or set `model` in the config"))?;
    let model = Autoencoder::load_or_embedded_with(Some(&model_path), cfg.pipeline.networks).map_err(usage)?;
    if let Some(dir) = &a.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display())).map_err(Usage)?;
    }
    let mut detector = Detector::new(model, &cfg.detector());
    // Expand each input on its own so one missing path does not stop the others.
    let mut paths = Vec::new();
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for input in &a.inputs {
        match image_paths(std::slice::from_ref(input)) {
            Ok(p) => paths.extend(p),
            Err(e) => {
                log::error!("{e}");
                let _ = writeln!(out, "{}", serde_json::json!({"image": input.display().to_string(), "error": e.to_string()}));
                failed += 1;
            }
        }
    }
    let mut processed = 0usize;
    for path in &paths {
        let name = path.display().to_string();
        let result = load_rgb(path).map_err(anyhow::Error::from).and_then(|img| {
            let d = detector.detect(&img)?;
            if let Some(dir) = &a.annotate {
                write_annotated(dir, path, &img, &detector, &d)?;
            }
            Ok(d)
        });
        let line = match result {
            Ok(d) => {
                processed += 1;
                serde_json::to_string(&ImageRecord::new(name, &d)).unwrap_or_default()
            }
            Err(e) => {
                failed += 1;
                log::error!("{}", one_line(&e));
                serde_json::json!({"image": name, "error": one_line(&e)}).to_string()
            }
        };
        if writeln!(out, "{line}").is_err() {
            break; // stdout closed (e.g. piped into head): nothing more to say.
        }
    }
    log::info!("{processed} images processed, {failed} failed");
    Ok(if processed == 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn write_annotated(dir: &Path, path: &Path, img: &RgbImage, det: &Detector, d: &Detection) -> Result<()> {
    let status = format!("{} swimmer(s)  thr {:.3}  {:.1} ms", d.boxes.len(), d.threshold, d.timings.total);
    let annotated = poolwatch::pipeline::overlay::annotate(img, det.heatmap(), d.threshold, &d.boxes, &status);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("frame");
    let out = dir.join(format!("{stem}.jpg"));
    annotated.save(&out).with_context(|| format!("cannot write {}", out.display()))
}
