//! `poolwatch-train train`: trains a model and exports it as ONNX, with its calibration, a report and
//! optionally its int8 twin.

use crate::args::{BlurArg, MaskArgs, parse_blur, parse_brightness_weight, parse_pair};
use anyhow::{Context, Result, anyhow};
use poolwatch::pipeline::heatmap::{BRIGHTNESS_WEIGHT, HeatmapSettings};
use poolwatch::pipeline::model::contract::{MAX_NETWORKS, parse_size};
use poolwatch::pipeline::model::{Arch, Autoencoder, Preprocess};
use poolwatch::train::augment::AugmentSettings;
use poolwatch::train::calibrate::REFERENCE_BLUR;
use poolwatch::train::dataset::{Dataset, DatasetSpec};
use poolwatch::train::footage::FootageSettings;
use poolwatch::train::selftrain::{SelfTrainSettings, find_missed};
use poolwatch::train::int8::{Int8Report, int8_path, make_int8};
use poolwatch::train::report::report_dir;
use poolwatch::train::networks::{each_network, merge_files};
use poolwatch::train::probe::{ProbeResult, ProbeSettings, choose, probe};
use poolwatch::train::{DeviceChoice, LrSchedule, NonPoolTarget, TrainSettings, TrainSummary, train};
use poolwatch::pipeline::pool::PoolSettings;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("frames").required(true).multiple(true).args(["normal", "footage"])))]
pub struct Args {
    /// Directories of empty-pool frames.
    #[arg(long, num_args = 1..)]
    pub normal: Vec<PathBuf>,
    /// Directories of recorded sessions, swimmers and all, no annotations (`poolwatch record`): what
    /// moves against each recording's background is filled with it and left out of training and
    /// calibration. Alone or with --normal; at least 30 consecutive frames of one camera each.
    #[arg(long, num_args = 1..)]
    pub footage: Vec<PathBuf>,
    /// Training rounds with --footage: after the first, its model looks at the footage again, what is
    /// unusual for its pixel is left out as well, and the model trained again (1: what moves only; 2
    /// helps an overhead camera's small swimmers, see README).
    #[arg(long, default_value_t = SelfTrainSettings::default().rounds, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=5))]
    pub footage_rounds: usize,
    /// With --footage-rounds 2 or more: a pixel is left out when its error is this many robust
    /// deviations above its median over the recording.
    #[arg(long, default_value_t = SelfTrainSettings::default().k, value_parser = parse_positive)]
    pub footage_k: f32,
    /// Directories of frames with annotated swimmers, inpainted out and added to training.
    #[arg(long, num_args = 1..)]
    pub inpaint: Vec<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Model input size.
    #[arg(long, default_value = "256x192")]
    pub size: String,
    /// seed4, seed3, fast, or CHANNELS:KERNELS[:resize|convtranspose].
    #[arg(long, default_value = "fast")]
    pub arch: String,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Continue from a checkpoint (written beside the model as MODEL.ckpt every epoch).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Networks trained (seeds --seed, --seed + 1000, --seed + 2000, ...) and put into the one file: the
    /// device averages their heatmaps, which evens out what one training run alone gets wrong, at one
    /// inference per network a frame (`[pipeline] networks = 1` runs the first alone on a slow board).
    /// Default: 2, or 1 with --footage (where two measured worse, and the self-check's held-out frames
    /// have swimmers of their own).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_NETWORKS as u64))]
    pub models: Option<usize>,
    /// Networks trained to choose --models from (default: one more than --models when it is 2 or more):
    /// each looks for bodies pasted into the held-out frames, and those that find the fewest are left
    /// out (a training run gone wrong, which reconstructs nearly anything, finds few).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=8))]
    pub candidates: Option<usize>,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// The learning rate over the run: constant (--lr throughout), cosine (from --lr down to 1 % of it by
    /// the last step) or tail (--lr for 80 % of the steps, then down to 1 % of it).
    #[arg(long, value_enum, default_value_t = LrSchedule::default())]
    pub lr_schedule: LrSchedule,
    #[arg(long, default_value_t = 1e-4)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Stop when the validation loss has not improved for this many epochs (0: never).
    #[arg(long, default_value_t = 6)]
    pub patience: usize,
    /// Fraction of each --normal and --footage directory (its last frames) held out for validation and
    /// calibration.
    #[arg(long, default_value_t = 0.15)]
    pub val_fraction: f32,
    /// What the network must output outside the pool (the seed's target-noise variants).
    #[arg(long, value_enum, default_value_t = NonPoolTarget::None)]
    pub nonpool_target: NonPoolTarget,
    #[arg(long, default_value_t = 0.1)]
    pub nonpool_weight: f64,
    /// Train without augmentation.
    #[arg(long, conflicts_with = "augment")]
    pub no_augment: bool,
    /// Change the augmentation: KEY=VALUE,... with keys min_crop (smallest crop side, 0.85),
    /// rotate_deg (4), hflip (0.5), vflip (0.1), brightness (0.2), saturation (0.25), blur (0.2).
    #[arg(long, value_name = "KEY=VALUE,...")]
    pub augment: Option<String>,
    /// Range compression before the model: map [0,1] to [LO,HI] (the seed's test-time
    /// normalisation), e.g. 0.1,0.8. Recorded in the model, so the device applies it too.
    #[arg(long, value_parser = parse_pair)]
    pub range: Option<[f32; 2]>,
    /// Bright-spot suppression: pixels whose luma is above this (0..1) become the frame's mean.
    #[arg(long)]
    pub bright_clip: Option<f32>,
    #[command(flatten)]
    pub mask: MaskArgs,
    /// libtorch CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    pub threads: i32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Also export an int8 model (MODEL.int8.onnx) and compare it with the float one.
    #[arg(long)]
    pub int8: bool,
    /// Heatmap smoothing in model pixels, or auto: chosen from the camera's noise grain on the
    /// held-out frames.
    #[arg(long, default_value = "auto", value_parser = parse_blur)]
    pub blur_sigma: BlurArg,
    /// Weight of brightness error against colour error in the heatmap (1: plain squared error).
    #[arg(long, default_value_t = BRIGHTNESS_WEIGHT, value_parser = parse_brightness_weight)]
    pub brightness_weight: f32,
}

/// The seed of network k of a file is `--seed + NETWORK_SEED_STEP * (k - 1)`.
const NETWORK_SEED_STEP: u64 = 1000;

fn parse_positive(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}': a positive number")),
    }
}

pub fn main(a: Args) -> Result<()> {
    let Args {
        normal, inpaint, footage, footage_rounds, footage_k, out, epochs, size, arch, device, resume, seed, models, candidates, batch, lr, lr_schedule, weight_decay, dropout,
        patience, val_fraction, nonpool_target, nonpool_weight, no_augment, augment, range, bright_clip, mask, threads, quiet, int8,
        blur_sigma, brightness_weight,
    } = a;
    let (width, height) = parse_size(&size).map_err(|e| anyhow!("--size: {e}"))?;
    let arch = Arch::by_name(&arch).map_err(|e| anyhow!("--arch: {e}"))?;
    if bright_clip.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
        anyhow::bail!("--bright-clip must be in [0, 1]");
    }
    if !(0.0..0.9).contains(&val_fraction) || !(0.0..1.0).contains(&dropout) || batch == 0 || epochs == 0 {
        anyhow::bail!("--val-fraction must be in [0, 0.9), --dropout in [0, 1), --batch and --epochs at least 1");
    }
    let models = models.unwrap_or(if footage.is_empty() { 2 } else { 1 });
    let candidates = candidates.unwrap_or(if models > 1 { models + 1 } else { 1 });
    if candidates < models {
        anyhow::bail!("--candidates {candidates} is fewer than --models {models}: the networks kept are chosen from the candidates");
    }
    if candidates > 1 && resume.is_some() {
        anyhow::bail!("--resume continues one network's run: resume with --models 1 --candidates 1, then `poolwatch-train merge` it with the others");
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
        lr_schedule,
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
    let spec = DatasetSpec {
        normal,
        inpaint,
        footage,
        footage_settings: FootageSettings::default(),
        footage_found: Default::default(),
        mask: pool.mask.clone(),
        val_fraction,
        max_size: (width * 2, height * 2),
    };
    let st = SelfTrainSettings { rounds: footage_rounds, k: footage_k, ..SelfTrainSettings::default() };
    let run = Run { spec: &spec, pool: &pool, st: &st, device, progress: !quiet };
    // Candidate 1 trains into --out (so that --resume continues it), the others beside it.
    let mut cands = Vec::with_capacity(candidates);
    let mut data = None;
    for k in 1..=candidates {
        let path = if k == 1 { out.clone() } else { out.with_extension(format!("net{k}.onnx")) };
        // Far from the next runs' --seed, so runs with seeds 1, 2, 3 share no network.
        let settings = TrainSettings { seed: seed.wrapping_add(NETWORK_SEED_STEP * (k as u64 - 1)), ..settings.clone() };
        if candidates > 1 {
            log::info!("network {k} of {candidates}: seed {}", settings.seed);
        }
        let (summary, d) = run.network(&settings, &path, if k == 1 { resume.as_deref() } else { None })?;
        log::info!("wrote {} after {} epochs (best {}), {:.0} s", path.display(), summary.epochs_run, summary.best_epoch, summary.seconds);
        let val: Vec<_> = d.val.iter().map(|s| &s.image).collect();
        let found = probe(Autoencoder::load(&path)?, &val, &ProbeSettings::default())?;
        log::info!(
            "self-check of {}: {} of {} bodies pasted into the held-out frames found ({:.0} %), {:.2} false boxes a frame",
            path.display(),
            found.found,
            found.bodies,
            found.recall * 100.0,
            found.false_boxes_per_frame
        );
        record_probe(&path, &found)?;
        cands.push((path, settings.seed, found));
        data.get_or_insert(d);
    }
    if candidates > 1 {
        keep_best(&cands, models, &out)?;
    }
    let data = data.context("no network trained")?;
    if int8 {
        let train_imgs: Vec<_> = data.train.iter().map(|s| &s.image).collect();
        let val_imgs: Vec<_> = data.val.iter().map(|s| &s.image).collect();
        let mut reports = Vec::new();
        each_network(&out, &int8_path(&out), |src, dst| -> Result<()> {
            // Named by the file it ends up in, not the network's temporary one.
            reports.push(Int8Report { path: int8_path(&out), ..make_int8(src, dst, &train_imgs, &val_imgs, &pool)? });
            Ok(())
        })?;
        let report = if reports.len() == 1 { serde_json::to_value(&reports[0])? } else { serde_json::to_value(&reports)? };
        let p = report_dir(&out).join("int8.json");
        std::fs::write(&p, serde_json::to_string_pretty(&report)?).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// What every network of a run shares.
struct Run<'a> {
    spec: &'a DatasetSpec,
    pool: &'a PoolSettings,
    st: &'a SelfTrainSettings,
    device: DeviceChoice,
    progress: bool,
}

impl Run<'_> {
    /// One network trained into `out`, with its self-training rounds when there is footage; returns its
    /// summary and the data of its last round.
    fn network(&self, settings: &TrainSettings, out: &Path, resume: Option<&Path>) -> Result<(TrainSummary, Dataset)> {
        let mut spec = self.spec.clone();
        let mut data = Dataset::load(&spec)?;
        log::info!("{} training frames ({} inpainted), {} held out", data.train.len(), data.train.iter().filter(|s| s.inpainted).count(), data.val.len());
        let mut summary = train(settings, &data, out, resume, self.device, self.progress)?;
        // Later rounds only look at footage: without it, one round is all there is.
        let rounds = if data.footage.is_empty() { 1 } else { self.st.rounds };
        for round in 2..=rounds {
            let model = Autoencoder::load(out).with_context(|| format!("self-training round {round}"))?;
            let found = find_missed(model, &data, self.pool, self.st).with_context(|| format!("self-training round {round}"))?;
            let boxes: usize = found.boxes.values().map(Vec::len).sum();
            log::info!(
                "round {round}: the model found {boxes} unusual regions in {} of {} footage frames; training again with them left out too",
                found.boxes.len(),
                found.frames
            );
            for (p, b) in found.boxes {
                spec.footage_found.entry(p).or_default().extend(b);
            }
            data = Dataset::load(&spec)?;
            summary = train(settings, &data, out, None, self.device, self.progress)?;
        }
        Ok((summary, data))
    }
}

/// Writes the self-check's result into the model's training summary (`poolwatch info` shows it).
fn record_probe(path: &Path, found: &ProbeResult) -> Result<()> {
    use poolwatch::pipeline::model::ModelMeta;
    let proto = poolwatch::pipeline::model::infer::read_proto(path)?;
    let mut meta = ModelMeta::from_proto(path, &proto)?;
    if let serde_json::Value::Object(m) = &mut meta.training {
        m.insert("probe".into(), serde_json::to_value(found)?);
    }
    let mut proto = proto;
    proto.metadata_props = meta.to_props();
    poolwatch::train::onnx::write_proto(path, &proto)?;
    Ok(())
}

/// Keeps the `models` candidates whose self-check found the most in `out` ([`choose`]: in the order
/// they were trained, the first kept leading the file's boxes), removes the candidates' own files, and
/// lists every candidate in the report's `networks.json`.
fn keep_best(cands: &[(PathBuf, u64, ProbeResult)], models: usize, out: &Path) -> Result<()> {
    let order = choose(&cands.iter().map(|c| c.2.f1).collect::<Vec<_>>(), models);
    let kept: Vec<PathBuf> = order.iter().map(|&i| cands[i].0.clone()).collect();
    let list: Vec<_> = cands
        .iter()
        .enumerate()
        .map(|(i, (p, seed, found))| {
            let place = order.iter().position(|&o| o == i);
            serde_json::json!({"seed": seed, "probe": found, "kept": place.map(|r| r + 1), "report": report_dir(p).display().to_string()})
        })
        .collect();
    for (i, (p, seed, found)) in cands.iter().enumerate() {
        if !order.contains(&i) {
            log::info!("left out: network of seed {seed} ({}), which found {:.0} % of the pasted bodies", p.display(), found.recall * 100.0);
        }
    }
    if models == 1 {
        if kept[0] != out {
            std::fs::copy(&kept[0], out).with_context(|| format!("cannot write {}", out.display()))?;
        }
    } else {
        merge_files(&kept, out)?;
    }
    for (p, _, _) in cands.iter().filter(|(p, _, _)| p != out) {
        let _ = std::fs::remove_file(p);
    }
    let dir = report_dir(out);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot write {}", dir.display()))?;
    let file = dir.join("networks.json");
    std::fs::write(&file, serde_json::to_string_pretty(&list)?).with_context(|| format!("cannot write {}", file.display()))?;
    log::info!("wrote {}: {models} of {} networks (their heatmaps averaged); the candidates: {}", out.display(), cands.len(), file.display());
    Ok(())
}
