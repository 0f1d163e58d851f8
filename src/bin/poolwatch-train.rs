//! `poolwatch-train`: the desktop companion. Trains the autoencoder on empty-pool frames (libtorch,
//! GPU when there is one) and exports one ONNX file the device runs as it is.

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use poolwatch::augment::AugmentSettings;
use poolwatch::calibrate::{Blur, DEFAULT_QUANTILE, calibrate, store_calibration};
use poolwatch::dataset::{Dataset, DatasetSpec};
use poolwatch::heatmap::{BRIGHTNESS_WEIGHT, BRIGHTNESS_WEIGHT_RANGE, HeatmapSettings, REFERENCE_BLUR};
use poolwatch::model::contract::parse_size;
use poolwatch::model::{Arch, Autoencoder, Preprocess};
use poolwatch::pool::{MaskSpec, PoolSettings};
use poolwatch::train::int8::{int8_path, make_int8};
use poolwatch::train::report::report_dir;
use poolwatch::train::{DeviceChoice, NonPoolTarget, TrainSettings, train};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "poolwatch-train", version, about = "Train poolwatch's autoencoder on empty-pool frames", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct MaskArgs {
    /// Pool mask: none (whole frame), auto (water colour), poly:X,Y;X,Y;X,Y... (source pixels), or a
    /// mask image file.
    #[arg(long, default_value = "none")]
    mask: String,
}

impl MaskArgs {
    fn pool(&self) -> Result<PoolSettings> {
        let mask = match self.mask.as_str() {
            "none" => MaskSpec::None,
            "auto" => MaskSpec::Auto,
            s if s.starts_with("poly:") => MaskSpec::Polygon(parse_polygon(&s[5..]).map_err(|e| anyhow!("--mask: {e}"))?),
            file => {
                if !Path::new(file).is_file() {
                    anyhow::bail!("--mask: '{file}' is not none, auto, poly:X,Y;X,Y;... or an existing mask image");
                }
                MaskSpec::Image(PathBuf::from(file))
            }
        };
        Ok(PoolSettings { mask, ..PoolSettings::default() })
    }
}

/// Parses `X,Y;X,Y;X,Y...` (at least three points).
fn parse_polygon(s: &str) -> Result<Vec<[f64; 2]>, String> {
    let pts = s
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (x, y) = p.split_once(',').ok_or_else(|| format!("'{p}' is not X,Y"))?;
            let n = |v: &str| v.trim().parse::<f64>().map_err(|_| format!("'{v}' is not a number"));
            Ok([n(x)?, n(y)?])
        })
        .collect::<Result<Vec<_>, String>>()?;
    if pts.len() < 3 {
        return Err(format!("a polygon needs at least 3 points, got {}", pts.len()));
    }
    Ok(pts)
}

#[derive(Subcommand)]
enum Command {
    /// Train a model and export it as ONNX (with calibration and a report beside it).
    Train {
        /// Directories of empty-pool frames.
        #[arg(long, required = true, num_args = 1..)]
        normal: Vec<PathBuf>,
        /// Directories of frames with annotated swimmers, inpainted out and added to training.
        #[arg(long, num_args = 1..)]
        inpaint: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 30)]
        epochs: usize,
        /// Model input size.
        #[arg(long, default_value = "256x192")]
        size: String,
        /// seed4, seed3, fast, or CHANNELS:KERNELS[:resize|convtranspose].
        #[arg(long, default_value = "fast")]
        arch: String,
        #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
        /// Continue from a checkpoint (written beside the model as MODEL.ckpt every epoch).
        #[arg(long)]
        resume: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 2e-3)]
        lr: f64,
        #[arg(long, default_value_t = 1e-4)]
        weight_decay: f64,
        #[arg(long, default_value_t = 0.0)]
        dropout: f64,
        /// Stop when the validation loss has not improved for this many epochs (0: never).
        #[arg(long, default_value_t = 6)]
        patience: usize,
        /// Fraction of each --normal directory held out for validation and calibration.
        #[arg(long, default_value_t = 0.15)]
        val_fraction: f32,
        /// What the network must output outside the pool (the seed's target-noise variants).
        #[arg(long, value_enum, default_value_t = NonPoolTarget::None)]
        nonpool_target: NonPoolTarget,
        #[arg(long, default_value_t = 0.1)]
        nonpool_weight: f64,
        /// Train without augmentation.
        #[arg(long, conflicts_with = "augment")]
        no_augment: bool,
        /// Change the augmentation: KEY=VALUE,... with keys min_crop (smallest crop side, 0.85),
        /// rotate_deg (4), hflip (0.5), vflip (0.1), brightness (0.2), saturation (0.25), blur (0.2).
        #[arg(long, value_name = "KEY=VALUE,...")]
        augment: Option<String>,
        /// Range compression before the model: map [0,1] to [LO,HI] (the seed's test-time
        /// normalisation), e.g. 0.1,0.8. Recorded in the model, so the device applies it too.
        #[arg(long, value_parser = parse_pair)]
        range: Option<[f32; 2]>,
        /// Bright-spot suppression: pixels whose luma is above this (0..1) become the frame's mean.
        #[arg(long)]
        bright_clip: Option<f32>,
        #[command(flatten)]
        mask: MaskArgs,
        /// libtorch CPU threads (0: libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: i32,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Also export an int8 model (MODEL.int8.onnx) and compare it with the float one.
        #[arg(long)]
        int8: bool,
        /// Heatmap smoothing in model pixels, or auto: chosen from the camera's noise grain on the
        /// held-out frames.
        #[arg(long, default_value = "auto", value_parser = parse_blur)]
        blur_sigma: BlurArg,
        /// Weight of brightness error against colour error in the heatmap (1: plain squared error).
        #[arg(long, default_value_t = BRIGHTNESS_WEIGHT, value_parser = parse_brightness_weight)]
        brightness_weight: f32,
    },
    /// Quantise a float model to int8 (QLinearConv), calibrated and compared on empty frames.
    Quantize {
        model: PathBuf,
        /// Empty-pool frames: the first 85 % set activation ranges, the rest calibrate.
        #[arg(long, required = true, num_args = 1..)]
        normal: Vec<PathBuf>,
        /// Where to write it (default: MODEL.int8.onnx).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        mask: MaskArgs,
    },
    /// Rewrite a float model from an earlier version in the current graph form (the sub-pixel decoder,
    /// 2-3x fewer operations): same weights, metadata and calibration. Quantise again afterwards.
    Upgrade {
        model: PathBuf,
        /// Where to write it (default: in place).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-measure a model's calibration on held-out empty frames.
    Calibrate {
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
        #[command(flatten)]
        mask: MaskArgs,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).format_timestamp_millis().init();
    let result = match Cli::parse().command {
        Command::Calibrate { model, normal, blur_sigma, brightness_weight, mask } => {
            mask.pool().and_then(|pool| recalibrate(&model, &normal, &pool, blur_sigma.0, brightness_weight))
        }
        Command::Upgrade { model, out } => (|| -> Result<()> {
            let out = out.unwrap_or_else(|| model.clone());
            let changed = poolwatch::model::onnx::upgrade_file(&model, &out)?;
            log::info!("{}: {}", out.display(), if changed { "rewritten in the current graph form" } else { "already in the current form" });
            Ok(())
        })(),
        Command::Quantize { model, normal, out, mask } => (|| -> Result<()> {
            let pool = mask.pool()?;
            let size = Autoencoder::load(&model)?.size();
            let spec = DatasetSpec { normal, inpaint: vec![], mask: pool.mask.clone(), val_fraction: 0.15, max_size: (size.0 * 2, size.1 * 2) };
            let data = Dataset::load(&spec)?;
            let out = out.unwrap_or_else(|| int8_path(&model));
            let report = make_int8(&model, &out, &data.train.iter().map(|s| &s.image).collect::<Vec<_>>(), &data.val.iter().map(|s| &s.image).collect::<Vec<_>>(), &pool)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        })(),
        Command::Train {
            normal, inpaint, out, epochs, size, arch, device, resume, seed, batch, lr, weight_decay, dropout,
            patience, val_fraction, nonpool_target, nonpool_weight, no_augment, augment, range, bright_clip, mask, threads, quiet, int8,
            blur_sigma, brightness_weight,
        } => (|| -> Result<()> {
            let (width, height) = parse_size(&size).map_err(|e| anyhow!("--size: {e}"))?;
            let arch = Arch::by_name(&arch).map_err(|e| anyhow!("--arch: {e}"))?;
            if bright_clip.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
                anyhow::bail!("--bright-clip must be in [0, 1]");
            }
            if !(0.0..0.9).contains(&val_fraction) || !(0.0..1.0).contains(&dropout) || batch == 0 || epochs == 0 {
                anyhow::bail!("--val-fraction must be in [0, 0.9), --dropout in [0, 1), --batch and --epochs at least 1");
            }
            if threads > 0 {
                tch::set_num_threads(threads);
            }
            let pool = mask.pool()?;
            let settings = TrainSettings {
                arch,
                width,
                height,
                epochs,
                batch,
                lr,
                weight_decay,
                dropout,
                seed,
                patience,
                augment: match (no_augment, augment) {
                    (true, _) => AugmentSettings::none(),
                    (false, None) => AugmentSettings::default(),
                    (false, Some(spec)) => AugmentSettings::default().with_overrides(&spec).map_err(|e| anyhow!("--augment: {e}"))?,
                },
                nonpool_target,
                nonpool_weight,
                preprocess: Preprocess { range, bright_clip },
                heatmap: HeatmapSettings { blur_sigma: blur_sigma.0.unwrap_or(REFERENCE_BLUR), brightness_weight, ..Default::default() },
                auto_blur: blur_sigma.0.is_none(),
                pool: pool.clone(),
            };
            let spec = DatasetSpec { normal, inpaint, mask: pool.mask.clone(), val_fraction, max_size: (width * 2, height * 2) };
            let data = Dataset::load(&spec)?;
            log::info!("{} training frames ({} inpainted), {} held out", data.train.len(), data.train.iter().filter(|s| s.inpainted).count(), data.val.len());
            let summary = train(&settings, &data, &out, resume.as_deref(), device, !quiet)?;
            log::info!(
                "wrote {} after {} epochs (best {}), {:.0} s",
                out.display(),
                summary.epochs_run,
                summary.best_epoch,
                summary.seconds
            );
            if int8 {
                let train_imgs: Vec<_> = data.train.iter().map(|s| &s.image).collect();
                let val_imgs: Vec<_> = data.val.iter().map(|s| &s.image).collect();
                let report = make_int8(&out, &int8_path(&out), &train_imgs, &val_imgs, &pool)?;
                let p = report_dir(&out).join("int8.json");
                std::fs::write(&p, serde_json::to_string_pretty(&report)?).with_context(|| format!("cannot write {}", p.display()))?;
            }
            Ok(())
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

/// Parses `LO,HI` with 0 <= LO < HI <= 1.
fn parse_pair(s: &str) -> Result<[f32; 2], String> {
    let (a, b) = s.split_once(',').ok_or_else(|| format!("'{s}' is not LO,HI"))?;
    let a: f32 = a.trim().parse().map_err(|_| format!("'{a}' is not a number"))?;
    let b: f32 = b.trim().parse().map_err(|_| format!("'{b}' is not a number"))?;
    if !(0.0 <= a && a < b && b <= 1.0) {
        return Err(format!("need 0 <= LO < HI <= 1, got {a},{b}"));
    }
    Ok([a, b])
}

/// `--blur-sigma`: `auto` (None) or a smoothing in model pixels.
#[derive(Clone, Copy, Debug)]
struct BlurArg(Option<f32>);

fn parse_brightness_weight(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if BRIGHTNESS_WEIGHT_RANGE.contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a weight in [{}, {}]", BRIGHTNESS_WEIGHT_RANGE.start(), BRIGHTNESS_WEIGHT_RANGE.end())),
    }
}

fn parse_blur(s: &str) -> Result<BlurArg, String> {
    if s == "auto" {
        return Ok(BlurArg(None));
    }
    match s.parse::<f32>() {
        Ok(v) if (0.0..=20.0).contains(&v) => Ok(BlurArg(Some(v))),
        _ => Err(format!("'{s}' is neither auto nor a smoothing in [0, 20] model pixels")),
    }
}

fn recalibrate(path: &Path, normal: &[PathBuf], pool: &PoolSettings, blur_sigma: Option<f32>, brightness_weight: Option<f32>) -> Result<()> {
    let mut model = Autoencoder::load(path)?;
    let mut heatmap = model.meta().calibration.as_ref().map(|c| c.heatmap.clone()).unwrap_or_default();
    heatmap.blur_sigma = blur_sigma.unwrap_or(REFERENCE_BLUR);
    heatmap.brightness_weight = brightness_weight.unwrap_or(heatmap.brightness_weight);
    let blur = if blur_sigma.is_some() { Blur::AsSet } else { Blur::Auto };
    // Frames at their own size, as training's held-out frames are: the same frames give the same calibration.
    let spec = DatasetSpec { normal: normal.to_vec(), inpaint: vec![], mask: pool.mask.clone(), val_fraction: 0.0, max_size: (u32::MAX, u32::MAX) };
    let data = Dataset::load(&spec)?;
    let frames: Vec<_> = data.train.iter().chain(&data.val).map(|s| s.image.clone()).collect();
    let cal = calibrate(&mut model, &frames, pool, heatmap, blur, DEFAULT_QUANTILE)?.context("no frames to calibrate on")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_masks_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_polygon("0,0; 10,0;10,5").unwrap(), vec![[0.0, 0.0], [10.0, 0.0], [10.0, 5.0]]);
        assert!(parse_polygon("0,0;1,1").unwrap_err().contains("at least 3"));
        assert!(parse_polygon("0,0;1;2,2").unwrap_err().contains("not X,Y"));
        let m = MaskArgs { mask: "poly:0,0;10,0;10,5".into() }.pool().unwrap();
        assert!(matches!(m.mask, MaskSpec::Polygon(ref p) if p.len() == 3));
        assert!(MaskArgs { mask: "/no/such/mask.png".into() }.pool().unwrap_err().to_string().contains("--mask"));
    }
}
