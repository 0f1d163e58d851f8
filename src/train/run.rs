//! The training run: batches of augmented empty-pool frames, MSE over pool pixels only (less footage's
//! moving regions), AdamW,
//! validation every epoch, a checkpoint every epoch, resume, early stopping; then export, tract
//! verification, calibration and the report.

use super::error::TrainError;
use super::net::{Adam, Net};
use super::report::TrainSummary;
use super::report;
use crate::train::augment::{AugmentSettings, augment};
use crate::train::calibrate::{Blur, DEFAULT_QUANTILE, calibrate_masked};
use crate::train::dataset::{Dataset, Sample};
use crate::pipeline::heatmap::HeatmapSettings;
use crate::pipeline::model::{Arch, Autoencoder, ModelMeta, Preprocess};
use crate::train::onnx::write_model;
use crate::pipeline::pool::{PoolSettings, resample_mask};
use crate::pipeline::preprocess::Preprocessor;
use crate::util::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device, TrainError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => Err(TrainError::Device(
                "--device cuda: libtorch sees no CUDA GPU (no driver, or a CPU-only libtorch); use --device cpu or auto".into(),
            )),
        }
    }
}

/// What the network is asked to output outside the pool (the seed's target-noise experiments). With
/// `None` the non-pool output is ignored (it equals the input on the device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NonPoolTarget {
    None,
    Gaussian,
    Bounded,
    Invert,
    Modulo,
}

/// How the learning rate moves over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` throughout (every model trained before the schedule existed).
    #[default]
    Constant,
    /// From `lr` down to [`LrSchedule::COSINE_FLOOR`] of it along half a cosine over all the run's steps:
    /// big steps while the loss falls fast, small ones at the end, so the last epochs settle instead of
    /// hopping between nearby minima.
    Cosine,
    /// `lr` for the first [`LrSchedule::TAIL_FROM`] of the steps, then down to the same floor along
    /// half a cosine over the rest: the fast descent of a constant rate, and a settled end.
    Tail,
}

impl LrSchedule {
    /// Where the cosine ends, as a fraction of `lr`.
    pub const COSINE_FLOOR: f64 = 0.01;
    /// Where [`LrSchedule::Tail`] starts to come down, as a fraction of the run's steps.
    pub const TAIL_FROM: f64 = 0.8;

    /// The rate for optimiser step `step` (0-based) of `total`.
    pub fn lr(self, lr: f64, step: i64, total: i64) -> f64 {
        let t = if total <= 1 { 1.0 } else { (step.max(0) as f64 / (total - 1) as f64).min(1.0) };
        let down = |t: f64| lr * (Self::COSINE_FLOOR + (1.0 - Self::COSINE_FLOOR) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()));
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => down(t),
            LrSchedule::Tail if t <= Self::TAIL_FROM => lr,
            LrSchedule::Tail => down((t - Self::TAIL_FROM) / (1.0 - Self::TAIL_FROM)),
        }
    }
}

/// Everything that shapes a training run; stored in checkpoints and in the model's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub arch: Arch,
    pub width: u32,
    pub height: u32,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    /// Models trained before the schedule existed ran at a constant rate.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    pub weight_decay: f64,
    pub dropout: f64,
    pub seed: u64,
    pub patience: usize,
    pub augment: AugmentSettings,
    pub nonpool_target: NonPoolTarget,
    pub nonpool_weight: f64,
    pub preprocess: Preprocess,
    pub heatmap: HeatmapSettings,
    /// Calibrate with the smoothing chosen from the camera's noise grain instead of `heatmap.blur_sigma`.
    #[serde(default)]
    pub auto_blur: bool,
    pub pool: PoolSettings,
}

/// Turns samples into batch tensors: augmentation, then the device's own pre-processing.
struct Batcher {
    pre: Preprocessor,
    width: u32,
    height: u32,
    pool: PoolSettings,
}

impl Batcher {
    fn batch(&mut self, samples: &[&Sample], aug: Option<(&AugmentSettings, &mut Rng)>, device: Device) -> Result<(Tensor, Tensor), TrainError> {
        let (w, h) = (self.width as i64, self.height as i64);
        let mut x = Vec::with_capacity(samples.len() * (3 * w * h) as usize);
        let mut m = Vec::with_capacity(samples.len() * (w * h) as usize);
        let mut aug = aug;
        for s in samples {
            let (img, mask) = match aug.as_mut() {
                Some((settings, rng)) => augment(&s.image, &s.mask, settings, rng),
                None => (s.image.clone(), s.mask.clone()),
            };
            x.extend_from_slice(self.pre.run(&img));
            // The mask was built at load time; resample (and erode) it as the device does.
            m.extend(resample_mask(&mask, self.width, self.height, self.pool.edge()));
        }
        let n = samples.len() as i64;
        let xt = Tensor::from_slice(&x).reshape([n, 3, h, w]).to_device(device);
        let mt = Tensor::from_slice(&m).reshape([n, 1, h, w]).to_device(device);
        Ok((xt, mt))
    }
}

fn loss(net: &Net, x: &Tensor, m: &Tensor, s: &TrainSettings, train: bool) -> Tensor {
    let y = net.forward(x, train);
    let pool = ((&y - x).square() * m).sum(Kind::Float) / (m.sum(Kind::Float) * 3.0 + 1e-6);
    if s.nonpool_target == NonPoolTarget::None || s.nonpool_weight <= 0.0 {
        return pool;
    }
    let target = match s.nonpool_target {
        NonPoolTarget::Gaussian => x + x.randn_like() * 0.2,
        NonPoolTarget::Bounded => x + (x.randn_like() * 0.2).clamp(-0.1, 0.1),
        NonPoolTarget::Invert => 1.0 - x,
        NonPoolTarget::Modulo => (x + 0.5).fmod(1.0),
        NonPoolTarget::None => x.shallow_clone(),
    };
    let outside = 1.0 - m;
    let np = ((&y - target.detach()).square() * &outside).sum(Kind::Float) / (outside.sum(Kind::Float) * 3.0 + 1e-6);
    pool + np * s.nonpool_weight
}

/// The checkpoint written beside the model after every epoch.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    out.with_extension("ckpt")
}

#[derive(Serialize, Deserialize)]
struct CheckpointMeta {
    epoch: usize,
    step: i64,
    settings: TrainSettings,
    summary: TrainSummary,
    best_val: f64,
    since_best: usize,
}

fn save_checkpoint(path: &Path, net: &Net, best: &Net, adam: &Adam, meta: &CheckpointMeta) -> Result<(), TrainError> {
    let json = serde_json::to_vec(meta).map_err(|e| TrainError::Settings(e.to_string()))?;
    let mut named: Vec<(String, Tensor)> = Vec::new();
    named.push(("meta".into(), Tensor::from_slice(&json)));
    for (i, (name, p)) in net.params.iter().enumerate() {
        named.push((format!("param.{name}"), p.detach().to_device(Device::Cpu)));
        named.push((format!("best.{name}"), best.params[i].1.detach().to_device(Device::Cpu)));
        named.push((format!("adam_m.{name}"), adam.m[i].to_device(Device::Cpu)));
        named.push((format!("adam_v.{name}"), adam.v[i].to_device(Device::Cpu)));
    }
    let tmp = path.with_extension("ckpt.tmp");
    Tensor::save_multi(&named, &tmp)?;
    std::fs::rename(&tmp, path).map_err(|cause| TrainError::Io { path: path.to_path_buf(), cause })
}

struct Restored {
    meta: CheckpointMeta,
    net: Net,
    best: Net,
    adam: Adam,
}

fn load_checkpoint(path: &Path, s: &TrainSettings, device: Device) -> Result<Restored, TrainError> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.to_path_buf(), reason };
    let tensors = Tensor::load_multi(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let get = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t.shallow_clone());
    let meta_t = get("meta").ok_or_else(|| bad("no 'meta' entry: not a poolwatch checkpoint".into()))?;
    let bytes = Vec::<u8>::try_from(meta_t).map_err(|e| bad(e.to_string()))?;
    let meta: CheckpointMeta = serde_json::from_slice(&bytes).map_err(|e| bad(format!("unreadable metadata ({e})")))?;
    if meta.settings.arch != s.arch || (meta.settings.width, meta.settings.height) != (s.width, s.height) {
        return Err(bad(format!(
            "it was trained with architecture '{}' at {}x{}; this run asks for '{}' at {}x{} (give the same --arch and --size, or start afresh)",
            meta.settings.arch.name, meta.settings.width, meta.settings.height, s.arch.name, s.width, s.height
        )));
    }
    let mut net = Net::new(&s.arch, device, s.seed, s.dropout);
    let mut best = Net::new(&s.arch, device, s.seed, s.dropout);
    let mut adam = Adam::new(&net, s.lr, s.weight_decay);
    tch::no_grad(|| -> Result<(), TrainError> {
        for (i, (name, p)) in net.params.iter_mut().enumerate() {
            let take = |prefix: &str| get(&format!("{prefix}.{name}")).ok_or_else(|| bad(format!("'{prefix}.{name}' is missing")));
            p.copy_(&take("param")?);
            best.params[i].1.copy_(&take("best")?);
            adam.m[i] = take("adam_m")?.to_device(device);
            adam.v[i] = take("adam_v")?.to_device(device);
        }
        Ok(())
    })?;
    adam.step = meta.step;
    Ok(Restored { meta, net, best, adam })
}

/// Trains, exports `out` (float ONNX), verifies it in tract, calibrates it and writes the report.
pub fn train(s: &TrainSettings, data: &Dataset, out: &Path, resume: Option<&Path>, device: DeviceChoice, progress: bool) -> Result<TrainSummary, TrainError> {
    if data.train.is_empty() || data.val.is_empty() {
        return Err(TrainError::Settings("need at least one training and one held-out frame (give more frames)".into()));
    }
    let m = s.arch.size_multiple();
    if s.width % m != 0 || s.height % m != 0 {
        return Err(TrainError::Settings(format!("--size {}x{}: both sides must be multiples of {m} for this architecture", s.width, s.height)));
    }
    // The checkpoint goes beside the model after every epoch: its folder must be there before the
    // first (libtorch's own error, after an epoch of work, is a page of C++ frames).
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|cause| TrainError::Io { path: dir.to_path_buf(), cause })?;
    }
    let device = device.resolve()?;
    log::info!("training on {} ({} libtorch threads)", if device == Device::Cpu { "the CPU".to_string() } else { format!("{device:?}") }, tch::get_num_threads());
    tch::manual_seed(s.seed as i64);
    let start = Instant::now();
    let ckpt = checkpoint_path(out);
    let (mut net, mut best, mut adam, mut meta) = match resume {
        Some(p) => {
            let r = load_checkpoint(p, s, device)?;
            log::info!("resuming from {} after epoch {}", p.display(), r.meta.epoch);
            (r.net, r.best, r.adam, r.meta)
        }
        None => {
            let net = Net::new(&s.arch, device, s.seed, s.dropout);
            let best = Net::new(&s.arch, device, s.seed, s.dropout);
            let adam = Adam::new(&net, s.lr, s.weight_decay);
            let summary = TrainSummary {
                train_frames: data.train.len(),
                val_frames: data.val.len(),
                inpainted_frames: data.train.iter().filter(|x| x.inpainted).count(),
                footage_frames: data.footage.iter().map(|f| f.frames.len()).sum(),
                footage_excluded_median: {
                    let mut v: Vec<f32> = data.footage.iter().flat_map(|f| f.frames.iter().map(|x| x.1)).collect();
                    crate::util::stats::median_f32(&mut v)
                },
                device: format!("{device:?}"),
                threads: tch::get_num_threads(),
                ..Default::default()
            };
            (net, best, adam, CheckpointMeta { epoch: 0, step: 0, settings: s.clone(), summary, best_val: f64::INFINITY, since_best: 0 })
        }
    };
    let mut batcher = Batcher { pre: Preprocessor::new(s.width, s.height, s.preprocess.clone()), width: s.width, height: s.height, pool: s.pool.clone() };
    let steps_per_epoch = data.train.len().div_ceil(s.batch.max(1));
    let total_steps = (s.epochs * steps_per_epoch) as i64;
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(((s.epochs.saturating_sub(meta.epoch)) * steps_per_epoch) as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} ETA {eta} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let val_refs: Vec<&Sample> = data.val.iter().collect();
    // Validation measures reconstruction of the pool alone, whatever the training target outside it.
    let plain = TrainSettings { nonpool_target: NonPoolTarget::None, ..s.clone() };
    while meta.epoch < s.epochs {
        let epoch = meta.epoch + 1;
        let mut rng = Rng::fork(s.seed, 1000 + epoch as u64);
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.int(0, i as u32) as usize);
        }
        let mut total = 0.0;
        for chunk in order.chunks(s.batch.max(1)) {
            let samples: Vec<&Sample> = chunk.iter().map(|&i| &data.train[i]).collect();
            let (x, mk) = batcher.batch(&samples, Some((&s.augment, &mut rng)), device)?;
            net.zero_grad();
            let l = loss(&net, &x, &mk, s, true);
            l.backward();
            // From the step count and the run's length: a run resumed with the same --epochs continues
            // the same curve.
            adam.lr = s.lr_schedule.lr(s.lr, adam.step, total_steps);
            adam.step(&mut net);
            let v = l.double_value(&[]);
            total += v * chunk.len() as f64;
            if let Some(b) = &bar {
                b.inc(1);
                b.set_message(format!("epoch {epoch}/{} loss {v:.5}", s.epochs));
            }
        }
        let train_loss = total / data.train.len() as f64;
        let val_loss = tch::no_grad(|| -> Result<f64, TrainError> {
            let mut sum = 0.0;
            for chunk in val_refs.chunks(s.batch.max(1)) {
                let (x, mk) = batcher.batch(chunk, None, device)?;
                sum += loss(&net, &x, &mk, &plain, false).double_value(&[]) * chunk.len() as f64;
            }
            Ok(sum / val_refs.len() as f64)
        })?;
        meta.summary.train_loss.push(train_loss);
        meta.summary.val_loss.push(val_loss);
        meta.epoch = epoch;
        meta.step = adam.step;
        if val_loss < meta.best_val {
            meta.best_val = val_loss;
            meta.since_best = 0;
            meta.summary.best_epoch = epoch;
            tch::no_grad(|| {
                for (i, (_, p)) in net.params.iter().enumerate() {
                    best.params[i].1.copy_(p);
                }
            });
        } else {
            meta.since_best += 1;
        }
        let line = format!("epoch {epoch}: train loss {train_loss:.6}, validation loss {val_loss:.6}");
        match &bar {
            Some(b) => b.println(line),
            None => log::info!("{line}"),
        }
        save_checkpoint(&ckpt, &net, &best, &adam, &meta)?;
        if s.patience > 0 && meta.since_best >= s.patience {
            log::info!("validation loss has not improved for {} epochs: stopping early", s.patience);
            meta.summary.stopped_early = true;
            break;
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    meta.summary.epochs_run = meta.epoch;
    meta.summary.seconds += start.elapsed().as_secs_f64();

    // Export the best weights through the device's writer, then prove tract computes what tch does.
    let mut model_meta = ModelMeta::new(s.width, s.height, s.arch.clone());
    model_meta.preprocess = s.preprocess.clone();
    model_meta.training = serde_json::json!({ "settings": s, "summary": meta.summary });
    write_model(out, &model_meta, &best.weights())?;
    let mut model = Autoencoder::load(out)?;
    let diff = tch::no_grad(|| -> Result<f32, TrainError> {
        let mut worst = 0.0f32;
        for chunk in val_refs.chunks(4).take(2) {
            let (x, _) = batcher.batch(chunk, None, device)?;
            let y = best.forward(&x, false).to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let xs = x.to_device(Device::Cpu).contiguous();
            for i in 0..chunk.len() as i64 {
                let xi = Vec::<f32>::try_from(xs.get(i).flatten(0, -1))?;
                let yi = Vec::<f32>::try_from(y.get(i).flatten(0, -1))?;
                let r = model.reconstruct(&xi)?;
                worst = r.iter().zip(&yi).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
            }
        }
        Ok(worst)
    })?;
    meta.summary.export_max_diff = diff;
    log::info!("export check: tract and libtorch agree within {diff:.2e}");
    if !(diff <= 1e-3) {
        return Err(TrainError::Mismatch(diff));
    }

    // Calibration on the held-out empty frames, stored in the model.
    // Each frame with its own mask: footage's moving regions stay out of the statistics.
    let blur = if s.auto_blur { Blur::Auto } else { Blur::AsSet };
    let cal = calibrate_masked(&mut model, data.val.iter().map(|v| (&v.image, &v.mask)), &s.pool, s.heatmap.clone(), blur, DEFAULT_QUANTILE)?
        .ok_or_else(|| TrainError::Settings("no held-out frame to calibrate on".into()))?;
    log::info!(
        "calibration on {} frames: threshold {:.3} (standardised), {:.5} (raw), heatmap smoothing {:.1} px",
        cal.frames,
        cal.threshold,
        cal.raw_threshold,
        cal.heatmap.blur_sigma
    );
    model_meta.training = serde_json::json!({ "settings": s, "summary": meta.summary });
    model_meta.calibration = Some(cal.clone());
    write_model(out, &model_meta, &best.weights())?;
    report::write(out, &meta.summary, &cal, data, &s.pool)?;
    Ok(meta.summary)
}

#[cfg(test)]
mod tests {
    use super::LrSchedule;

    #[test]
    fn cosine_runs_from_the_rate_to_its_floor_and_never_rises() {
        let (lr, total) = (2e-3, 1140);
        assert_eq!(LrSchedule::Constant.lr(lr, 700, total), lr);
        assert!((LrSchedule::Cosine.lr(lr, 0, total) - lr).abs() < 1e-15);
        assert!((LrSchedule::Cosine.lr(lr, total - 1, total) - lr * LrSchedule::COSINE_FLOOR).abs() < 1e-15);
        // Halfway: the mean of the two ends.
        let mid = LrSchedule::Cosine.lr(lr, 1, 3);
        assert!((mid - lr * (1.0 + LrSchedule::COSINE_FLOOR) / 2.0).abs() < 1e-15);
        let rates: Vec<f64> = (0..total).map(|t| LrSchedule::Cosine.lr(lr, t, total)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
        // Past the end (a resumed run given fewer epochs) it stays at the floor; a one-step run takes the floor.
        assert_eq!(LrSchedule::Cosine.lr(lr, total + 50, total), LrSchedule::Cosine.lr(lr, total - 1, total));
        assert!((LrSchedule::Cosine.lr(lr, 0, 1) - lr * LrSchedule::COSINE_FLOOR).abs() < 1e-15);
    }

    #[test]
    fn tail_holds_the_rate_then_comes_down_to_the_floor() {
        let (lr, total) = (2e-3, 1001);
        // Steps 0..=800 are the first 80 %: the rate as given.
        assert!((0..=800).all(|t| LrSchedule::Tail.lr(lr, t, total) == lr));
        assert!(LrSchedule::Tail.lr(lr, 801, total) < lr);
        assert!((LrSchedule::Tail.lr(lr, 900, total) - lr * (1.0 + LrSchedule::COSINE_FLOOR) / 2.0).abs() < 1e-12);
        assert!((LrSchedule::Tail.lr(lr, total - 1, total) - lr * LrSchedule::COSINE_FLOOR).abs() < 1e-15);
        let rates: Vec<f64> = (0..total).map(|t| LrSchedule::Tail.lr(lr, t, total)).collect();
        assert!(rates.windows(2).all(|w| w[1] <= w[0]));
    }
}
