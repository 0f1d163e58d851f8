//! The training report beside the model (`MODEL.report/`): loss curves (plotters), held-out frames
//! with their heatmaps and boxes (the core overlay), and the numbers as JSON.

use super::error::TrainError;
use serde::{Deserialize, Serialize};
use crate::train::dataset::Dataset;
use crate::pipeline::detect::{Detector, DetectorSettings};
use crate::pipeline::model::{Autoencoder, Calibration};
use crate::pipeline::overlay;
use crate::pipeline::pool::PoolSettings;
use image::RgbImage;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// What a run did; goes into the model's `training` metadata and the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainSummary {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub train_loss: Vec<f64>,
    pub val_loss: Vec<f64>,
    pub train_frames: usize,
    pub val_frames: usize,
    pub inpainted_frames: usize,
    /// Frames from `--footage` (training and held out).
    #[serde(default)]
    pub footage_frames: usize,
    /// The median fraction of a footage frame left out as moving.
    #[serde(default)]
    pub footage_excluded_median: Option<f32>,
    pub device: String,
    /// libtorch's CPU threads: how its float sums are split, so two machines or thread counts train
    /// the same seed into different models (0 in reports from before it was recorded).
    #[serde(default)]
    pub threads: i32,
    pub seconds: f64,
    pub export_max_diff: f32,
    pub stopped_early: bool,
}

pub fn report_dir(model: &Path) -> PathBuf {
    model.with_extension("report")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |cause| TrainError::Io { path: path.to_path_buf(), cause }
}

fn img_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io { path: path.to_path_buf(), cause: std::io::Error::other(e.to_string()) }
}

/// Training and validation loss per epoch as a PNG.
pub fn loss_plot(path: &Path, train: &[f64], val: &[f64]) -> Result<(), TrainError> {
    let (w, h) = (640u32, 360u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let n = train.len().max(2) as f64;
    let ymax = train.iter().chain(val).copied().filter(|v| v.is_finite()).fold(1e-9, f64::max) * 1.05;
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(30)
            .margin_left(50)
            .margin_right(20)
            .margin_bottom(30)
            .build_cartesian_2d(1f64..n, 0f64..ymax)
            .map_err(|e| img_err(path, e))?;
        let area = chart.plotting_area();
        for i in 0..=4 {
            let y = ymax * i as f64 / 4.0;
            area.draw(&PathElement::new(vec![(1.0, y), (n, y)], RGBColor(225, 225, 225))).map_err(|e| img_err(path, e))?;
        }
        area.draw(&PathElement::new(vec![(1.0, 0.0), (n, 0.0)], BLACK)).map_err(|e| img_err(path, e))?;
        area.draw(&PathElement::new(vec![(1.0, 0.0), (1.0, ymax)], BLACK)).map_err(|e| img_err(path, e))?;
        let series = |v: &[f64]| v.iter().enumerate().map(|(i, y)| ((i + 1) as f64, *y)).collect::<Vec<_>>();
        chart.draw_series(LineSeries::new(series(train), BLUE.stroke_width(2))).map_err(|e| img_err(path, e))?;
        chart.draw_series(LineSeries::new(series(val), RED.stroke_width(2))).map_err(|e| img_err(path, e))?;
        root.present().map_err(|e| img_err(path, e))?;
    }
    // Text through the same drawing code as the overlays.
    let mut img = RgbImage::from_raw(w, h, buf).ok_or_else(|| img_err(path, "plot buffer size"))?;
    let best = val.iter().copied().fold(f64::INFINITY, f64::min);
    overlay::status_line(&mut img, &format!("loss per epoch: train (blue), validation (red); best validation {best:.5}"));
    let mut label = |text: &str, x: i32, y: i32| {
        use embedded_graphics::mono_font::{MonoTextStyle, ascii::FONT_6X10};
        use embedded_graphics::pixelcolor::Rgb888;
        use embedded_graphics::prelude::*;
        use embedded_graphics::text::Text;
        let _ = Text::new(text, Point::new(x, y), MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK)).draw(&mut overlay::Canvas(&mut img));
    };
    label(&format!("{ymax:.4}"), 2, 40);
    label("0", 40, (h - 30) as i32);
    label("epoch 1", 50, (h - 14) as i32);
    label(&format!("epoch {}", train.len()), (w - 80) as i32, (h - 14) as i32);
    img.save(path).map_err(|e| img_err(path, e))
}

/// Writes the whole report for a trained, calibrated model.
pub fn write(model_path: &Path, summary: &TrainSummary, cal: &Calibration, data: &Dataset, pool: &PoolSettings) -> Result<PathBuf, TrainError> {
    let dir = report_dir(model_path);
    std::fs::create_dir_all(dir.join("examples")).map_err(io(&dir))?;
    loss_plot(&dir.join("loss.png"), &summary.train_loss, &summary.val_loss)?;
    let model = Autoencoder::load(model_path)?;
    let settings = DetectorSettings { pool: Some(pool.clone()), ..DetectorSettings::default() };
    let mut det = Detector::new(model, &settings);
    let step = (data.val.len() / 4).max(1);
    let mut false_boxes = 0;
    for (k, s) in data.val.iter().step_by(step).take(4).enumerate() {
        let d = det.detect(&s.image)?;
        false_boxes += d.boxes.len();
        let kind = if s.excluded > 0.0 { "held-out footage frame (moving parts filled)" } else { "held-out empty frame" };
        let status = format!("{kind}: {} box(es), threshold {:.2}", d.boxes.len(), d.threshold);
        let mut img = overlay::annotate(&s.image, det.heatmap(), d.threshold, &d.boxes, &status);
        let side = overlay::heatmap_image(det.heatmap(), d.threshold, s.image.width(), s.image.height());
        let mut both = RgbImage::new(img.width() * 2, img.height());
        image::imageops::replace(&mut both, &img, 0, 0);
        image::imageops::replace(&mut both, &side, img.width() as i64, 0);
        img = both;
        let p = dir.join("examples").join(format!("val{k}.jpg"));
        img.save(&p).map_err(|e| img_err(&p, e))?;
    }
    // Footage: what was taken for swimmers and left out, on a few frames of each directory.
    let mut footage = Vec::new();
    for (d, f) in data.footage.iter().enumerate() {
        let mut shown = Vec::new();
        for (k, (origin, img)) in f.previews.iter().enumerate() {
            let fraction = f.frames.iter().find(|(p, _)| p == origin).map_or(0.0, |x| x.1);
            let mut img = img.clone();
            let name = origin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let what = if f.found_frames > 0 { "moving: red, unusual to the first model: yellow" } else { "moving" };
            overlay::status_line(&mut img, &format!("{name}: {:.1}% left out ({what})", fraction * 100.0));
            let p = dir.join("examples").join(format!("footage{d}-{k}.jpg"));
            img.save(&p).map_err(|e| img_err(&p, e))?;
            shown.push(p.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
        footage.push(serde_json::json!({
            "dir": f.dir,
            "median_fraction_left_out": f.median_fraction,
            "frames_with_what_the_first_model_found": f.found_frames,
            "motion_analysis_width": f.analysis_width,
            "examples": shown,
            "frames": f.frames.iter().map(|(p, x)| serde_json::json!({ "frame": p, "fraction_left_out": x })).collect::<Vec<_>>(),
        }));
    }
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
    let json = serde_json::json!({
        "summary": summary,
        "calibration": {
            "frames": cal.frames, "quantile": cal.quantile, "threshold": cal.threshold, "raw_threshold": cal.raw_threshold,
            "mean_error": mean(&cal.mean), "mean_spread": mean(&cal.std), "heatmap": cal.heatmap,
        },
        "boxes_on_example_empty_frames": false_boxes,
        "footage": footage,
    });
    let p = dir.join("report.json");
    std::fs::write(&p, serde_json::to_string_pretty(&json).unwrap_or_default()).map_err(io(&p))?;
    log::info!("report in {}", dir.display());
    Ok(dir)
}
