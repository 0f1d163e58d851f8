//! `poolwatch`: the device-side command line. Thin: parses arguments and calls the library.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use image::RgbImage;
use poolwatch::annotations::{OwnAnnotation, OwnBox, write_own};
use poolwatch::boxes::BBox;
use poolwatch::config::Config;
use poolwatch::detect::{Detector, ImageRecord};
use poolwatch::model::{Autoencoder, contract::parse_size};
use poolwatch::pool::MaskSpec;
use poolwatch::source::dir::{image_paths, load_rgb};
use poolwatch::synth::{Scene, SynthSettings, frame_plan, parse_range};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "poolwatch", version, about = "Swimmer detection for poolside cameras", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: frames from the config's source (camera, files, stdin, synthetic pool) through
    /// the detector and tracker to stdout, serial, MQTT, snapshots and the preview server, until
    /// SIGTERM/SIGINT (exit 0). SIGHUP reloads config and model. With no options: the synthetic pool
    /// camera and the shipped model, one JSON line per frame on stdout.
    Run {
        /// The TOML config (README: "Configuration").
        #[arg(long)]
        config: Option<PathBuf>,
        /// The ONNX model (default: the config's, else the shipped one).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Images, directories or glob patterns to run on instead of the config's source.
        #[arg(long, num_args = 1.., conflicts_with = "stdin")]
        input: Vec<PathBuf>,
        /// Read frames from standard input instead: `mjpeg` (e.g. from ffmpeg) or `rgb` (needs --size).
        #[arg(long, value_parser = ["mjpeg", "rgb"])]
        stdin: Option<String>,
        /// Frame size of raw RGB on stdin, WxH.
        #[arg(long)]
        size: Option<String>,
        /// Start --input over when it ends.
        #[arg(long = "loop")]
        looping: bool,
        /// Stop after this many processed frames.
        #[arg(long)]
        frames: Option<u64>,
        /// Frame rate: of the synthetic camera, or to pace --input/--stdin at (default: as they come).
        #[arg(long)]
        fps: Option<f64>,
    },
    /// Check a config file (and that its model loads); prints what it would run. Exit 2 if invalid.
    CheckConfig {
        config: PathBuf,
    },
    /// Save raw frames from the config's source, for retraining on the desktop.
    Record {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 100)]
        frames: u64,
        /// Keep one frame in N (spread a recording over time).
        #[arg(long, default_value_t = 1)]
        every: u64,
        /// jpg or png.
        #[arg(long, default_value = "jpg")]
        format: String,
    },
    /// Detect swimmers in images or directories of images; one JSON line per image on stdout.
    Detect {
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
    },
    /// Write synthetic pool frames with exact swimmer annotations.
    Synth {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 12)]
        frames: u64,
        /// Swimmers per scene, e.g. 1..3 (0 for empty pools).
        #[arg(long, default_value = "1..4")]
        swimmers: String,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "640x480")]
        size: String,
        /// Camera placements (venues) the frames are spread over.
        #[arg(long, default_value_t = 1)]
        scenes: u32,
        /// Seconds between consecutive frames of a scene.
        #[arg(long, default_value_t = 0.5)]
        interval: f32,
        /// Time of the first frame, seconds (record the empty pool and the swimmers at other times).
        #[arg(long, default_value_t = 0.0)]
        start: f32,
        /// Image format: jpg or png.
        #[arg(long, default_value = "jpg")]
        format: String,
    },
    /// Measure the detector on annotated frames: box recall, precision, F1, false boxes per frame and
    /// AP at IoU 0.3 and 0.5; pixel AUROC; AUPRO; image AUROC with --normal frames.
    Eval {
        #[arg(long)]
        model: Option<PathBuf>,
        /// Directories (or images) of annotated frames (any supported annotation format).
        #[arg(long, required = true, num_args = 1..)]
        test: Vec<PathBuf>,
        /// Frames of the empty pool, for image AUROC.
        #[arg(long, num_args = 1..)]
        normal: Vec<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Write PR and PRO curves as PNG here.
        #[arg(long)]
        plots: Option<PathBuf>,
        /// Score what the daemon reports: the test frames of each directory are a video, in name order,
        /// run through the tracker (the config's `[tracking]`), and only its confirmed swimmers count.
        #[arg(long)]
        track: bool,
    },
    /// Time every stage of the pipeline on synthetic frames: medians, p99, frames per second, peak memory.
    Bench {
        /// The model (default: the shipped one).
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long, default_value_t = 200)]
        frames: usize,
        /// Detection threads, each running the whole pipeline on every T-th frame with a model state of
        /// its own (as the daemon's `pipeline.threads` workers); frames/s counts them together.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Camera frame size.
        #[arg(long, default_value = "640x480")]
        size: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a model's metadata.
    Info {
        model: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the pool mask automatic detection (or the config's mask) finds for an image.
    Mask {
        image: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Take the mask from this config instead of automatic detection.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write the image with the non-pool area darkened.
        #[arg(long)]
        preview: Option<PathBuf>,
    },
}

/// An error that means bad input from the user (config, model): exit status 2.
struct Usage(anyhow::Error);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,tract_linalg=warn")).format_timestamp_millis().init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, model, input, stdin, size, looping, frames, fps } => {
            run(config, model, input, stdin, size, looping, frames, fps)
        }
        Command::CheckConfig { config } => check_config(&config),
        Command::Record { config, out, frames, every, format } => record(config, &out, frames, every, &format),
        Command::Detect { model, config, annotate, inputs } => detect(model, config, annotate, &inputs),
        Command::Synth { out, frames, swimmers, seed, size, scenes, interval, start, format } => {
            synth(&out, frames, &swimmers, seed, &size, scenes, interval, start, &format).map_err(Usage)
        }
        Command::Info { model, json } => info(&model, json).map_err(Usage),
        Command::Bench { model, frames, threads, size, json } => bench(model, frames, threads, &size, json).map_err(Usage),
        Command::Eval { model, test, normal, config, json, plots, track } => eval(model, &test, &normal, config, json, plots, track),
        Command::Mask { image, out, config, preview } => mask(&image, &out, config, preview).map_err(Usage),
    };
    match result {
        Ok(code) => code,
        Err(Usage(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn detect(model: Option<PathBuf>, config: Option<PathBuf>, annotate: Option<PathBuf>, inputs: &[PathBuf]) -> Result<ExitCode, Usage> {
    let cfg = load_config(config.as_deref()).map_err(Usage)?;
    let model_path = model
        .or(cfg.model.clone())
        .ok_or_else(|| Usage(anyhow::anyhow!("no model: give --model FILE or set `model` in the config")))?;
    let model = Autoencoder::load(&model_path).map_err(|e| Usage(e.into()))?;
    if let Some(dir) = &annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display())).map_err(Usage)?;
    }
    let mut detector = Detector::new(model, &cfg);
    // Expand each input on its own so one missing path does not stop the others.
    let mut paths = Vec::new();
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for input in inputs {
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
            if let Some(dir) = &annotate {
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

#[allow(clippy::too_many_arguments)]
fn run(
    config: Option<PathBuf>,
    model: Option<PathBuf>,
    input: Vec<PathBuf>,
    stdin: Option<String>,
    size: Option<String>,
    looping: bool,
    frames: Option<u64>,
    fps: Option<f64>,
) -> Result<ExitCode, Usage> {
    use poolwatch::daemon::{DaemonError, RunOptions};
    use poolwatch::source::{SourceSettings, stream::StreamFormat};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let mut cfg = load_config(config.as_deref()).map_err(Usage)?;
    if let Some(f) = fps
        && !(f > 0.0 && f <= 1000.0)
    {
        return Err(Usage(anyhow::anyhow!("--fps must be in (0, 1000]")));
    }
    let from_file = cfg.source.clone();
    if !input.is_empty() {
        let path = input.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        cfg.source = SourceSettings::Dir { path, fps: fps.unwrap_or(0.0), looping };
    } else if let Some(fmt) = stdin {
        let format = if fmt == "rgb" { StreamFormat::Rgb } else { StreamFormat::Mjpeg };
        let (width, height) = match size {
            Some(s) => parse_size(&s).map_err(|e| Usage(anyhow::anyhow!("--size: {e}")))?,
            None => (0, 0),
        };
        cfg.source = SourceSettings::Stdin { format, width, height, fps: fps.unwrap_or(0.0) };
    } else if let (Some(f), SourceSettings::Synth { fps, .. }) = (fps, &mut cfg.source) {
        *fps = f;
    }
    cfg.validate().map_err(|e| Usage(e.into()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers").map_err(Usage)?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload)).context("cannot install signal handlers").map_err(Usage)?;
    let source = (cfg.source != from_file).then(|| cfg.source.clone());
    let opts = RunOptions { config_path: config, model, max_frames: frames, source };
    match poolwatch::daemon::run(cfg, &opts, stop, reload) {
        Ok(stats) => Ok(if stats.processed == 0 && stats.bad_frames > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }),
        Err(e @ (DaemonError::Model(_) | DaemonError::Source(_) | DaemonError::Http(_) | DaemonError::Mqtt(_))) => Err(Usage(e.into())),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn check_config(path: &Path) -> Result<ExitCode, Usage> {
    use poolwatch::daemon::{RunOptions, load_model};
    let cfg = Config::load(path).map_err(|e| Usage(e.into()))?;
    let model = load_model(&cfg, &RunOptions::default()).map_err(|e| Usage(e.into()))?;
    let (w, h) = model.size();
    println!("config {}: ok", path.display());
    println!("  name     {}", cfg.name);
    println!("  model    {} ({w}x{h})", model.path().display());
    println!("  source   {:?}", cfg.source);
    let mut outputs = Vec::new();
    if cfg.stdout.enabled {
        outputs.push("stdout".to_string());
    }
    if let Some(s) = &cfg.serial {
        outputs.push(format!("serial {} {} baud", s.port, s.baud));
    }
    if let Some(m) = &cfg.mqtt {
        outputs.push(format!("mqtt {}:{} under {}/{}/", m.host, m.port, m.topic_prefix, cfg.name));
    }
    if let Some(s) = &cfg.snapshots {
        outputs.push(format!("snapshots {}", s.dir.display()));
    }
    if let Some(h) = &cfg.http {
        outputs.push(format!("http {}", h.listen));
    }
    println!("  outputs  {}", if outputs.is_empty() { "none".to_string() } else { outputs.join(", ") });
    if let Some(l) = &cfg.lanes {
        println!("  lanes    {} over {} m", l.count, l.length_m);
    }
    Ok(ExitCode::SUCCESS)
}

fn record(config: Option<PathBuf>, out: &Path, frames: u64, every: u64, format: &str) -> Result<ExitCode, Usage> {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    if !["jpg", "png"].contains(&format) {
        return Err(Usage(anyhow::anyhow!("--format must be jpg or png")));
    }
    if every == 0 {
        return Err(Usage(anyhow::anyhow!("--every must be at least 1")));
    }
    let cfg = load_config(config.as_deref()).map_err(Usage)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display())).map_err(Usage)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers").map_err(Usage)?;
    }
    let first = cfg.source.open(0).map_err(|e| Usage(e.into()));
    let first = match first {
        Ok(s) => Some(s),
        Err(e) if cfg.source.is_finite() => return Err(e),
        Err(e) => {
            log::warn!("{}; will keep trying", one_line(&e.0));
            None
        }
    };
    let mut source = poolwatch::source::Reopening::new(cfg.source.clone(), Arc::clone(&stop), Box::new(|_| {}));
    if let Some(s) = first {
        source = source.with_opened(s);
    }
    use poolwatch::source::FrameSource;
    let (mut saved, mut seen) = (0u64, 0u64);
    while saved < frames {
        match source.next_frame() {
            Ok(Some(f)) => {
                seen += 1;
                if (seen - 1) % every != 0 {
                    continue;
                }
                let path = out.join(format!("frame-{:06}.{format}", saved));
                let result = if format == "jpg" {
                    let mut bytes = Vec::new();
                    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
                    f.image.write_with_encoder(enc).map_err(anyhow::Error::from).and_then(|_| Ok(std::fs::write(&path, &bytes)?))
                } else {
                    f.image.save(&path).map_err(anyhow::Error::from)
                };
                if let Err(e) = result {
                    eprintln!("error: cannot write {}: {}", path.display(), one_line(&e));
                    return Ok(ExitCode::from(1));
                }
                saved += 1;
            }
            Ok(None) => break,
            Err(e) => log::warn!("skipping a frame: {e}"),
        }
    }
    log::info!("saved {saved} frames in {}", out.display());
    Ok(if saved == 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn eval(model: Option<PathBuf>, test: &[PathBuf], normal: &[PathBuf], config: Option<PathBuf>, json: bool, plots: Option<PathBuf>, track: bool) -> Result<ExitCode, Usage> {
    use poolwatch::eval::Evaluator;
    let cfg = load_config(config.as_deref()).map_err(Usage)?;
    let model = match model.or(cfg.model.clone()) {
        Some(p) => Autoencoder::load(&p),
        None => Autoencoder::embedded(),
    }
    .map_err(|e| Usage(e.into()))?;
    let mut det = Detector::new(model, &cfg);
    let mut ev = Evaluator::default();
    let tests = image_paths(test).map_err(|e| Usage(e.into()))?;
    let normals = image_paths(normal).map_err(|e| Usage(e.into()))?;
    // With --track: one tracker per directory (a video), fed every frame in order.
    let mut tracker: Option<(Option<PathBuf>, poolwatch::track::Tracker)> = None;
    for (seq, path) in tests.iter().enumerate() {
        let result = (|| -> Result<()> {
            let img = load_rgb(path)?;
            let ann = poolwatch::annotations::find_for(path).with_context(|| format!("{}: no annotation beside it", path.display()))?;
            let truth = poolwatch::annotations::read(&ann, img.width(), img.height())?;
            let d = det.detect(&img)?;
            let boxes = if track {
                let video = path.parent().map(Path::to_path_buf);
                if tracker.as_ref().is_none_or(|(v, _)| *v != video) {
                    tracker = Some((video, poolwatch::track::Tracker::new(cfg.tracking.clone())));
                }
                let t = &mut tracker.as_mut().expect("set above").1;
                t.update(seq as u64, &d.boxes);
                t.tracks().map(|t| BBox { x1: t.bbox[0], y1: t.bbox[1], x2: t.bbox[2], y2: t.bbox[3], score: t.score }).collect()
            } else {
                d.boxes
            };
            ev.add_test(&boxes, det.heatmap(), &det.mask(), &truth, img.dimensions());
            Ok(())
        })();
        if let Err(e) = result {
            log::warn!("skipping {}", one_line(&e));
            ev.skip();
        }
    }
    for path in &normals {
        match load_rgb(path).map_err(anyhow::Error::from).and_then(|img| Ok(det.detect(&img)?)) {
            Ok(d) => ev.add_normal(&d.boxes),
            Err(e) => {
                log::warn!("skipping {}", one_line(&e));
                ev.skip();
            }
        }
    }
    let report = ev.report();
    if report.frames == 0 {
        return Err(Usage(anyhow::anyhow!("no annotated frame could be evaluated in {}", test.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))));
    }
    if json {
        let mut v = serde_json::json!({
            "frames": report.frames, "pixel_auroc": report.pixel_auroc, "aupro": report.aupro,
            "image_auroc": report.image_auroc, "skipped": report.skipped,
        });
        v["box"] = serde_json::to_value(&report.box_metrics).unwrap_or_default();
        println!("{v}");
    } else {
        println!("{} frames ({} skipped)", report.frames, report.skipped);
        println!("IoU   recall  precision  F1     false/frame  AP");
        for (iou, m) in &report.box_metrics {
            println!("{iou:<5} {:<7.3} {:<10.3} {:<6.3} {:<12.3} {:.3}", m.recall, m.precision, m.f1, m.fp_per_frame, m.ap);
        }
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
        println!("pixel AUROC {}  AUPRO(0.3) {}  image AUROC {}", opt(report.pixel_auroc), opt(report.aupro), opt(report.image_auroc));
    }
    if let Some(dir) = plots {
        write_plots(&dir, &ev).map_err(Usage)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(model: Option<PathBuf>, frames: usize, threads: usize, size: &str, json: bool) -> Result<ExitCode> {
    let (w, h) = parse_size(size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    if frames == 0 || threads == 0 || threads > 64 {
        bail!("--frames must be at least 1 and --threads in 1..=64");
    }
    let (m, label) = match &model {
        Some(p) => (Autoencoder::load(p)?, p.display().to_string()),
        None => (Autoencoder::embedded()?, "embedded".to_string()),
    };
    let r = poolwatch::bench::run(m, &label, threads, frames, w, h)?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("model {} ({})  {} frames of {}  {} thread(s)", r.model, r.runtime, r.frames, r.size, r.threads);
        println!("{:<11} {:>9} {:>9}", "stage", "median ms", "p99 ms");
        for s in poolwatch::bench::STAGES {
            println!("{s:<11} {:>9.3} {:>9.3}", r.stages[s], r.p99[s]);
        }
        println!("{:<11} {:>9.3} {:>9.3}", "pipeline", r.pipeline_ms, r.pipeline_p99_ms);
        let over = |ms: f64| (ms / r.infer_ms.max(1e-9) - 1.0) * 100.0;
        println!("{:.1} frames/s; pipeline adds {:.0}% over inference", r.fps, over(r.pipeline_ms));
        println!("detection thread (all but decode, which the daemon's capture thread does) {:.3} ms: adds {:.0}%", r.detector_ms, over(r.detector_ms));
        if let Some(mb) = r.peak_rss_mb {
            println!("peak resident memory {mb:.1} MB");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_plots(dir: &Path, ev: &poolwatch::eval::Evaluator) -> Result<()> {
    use poolwatch::chart::{Series, line_chart};
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let colors = [[220, 40, 40], [40, 80, 220]];
    let labels: Vec<String> = poolwatch::eval::IOUS.iter().map(|i| format!("IoU {i}")).collect();
    let series: Vec<Series> = ev
        .matchers
        .iter()
        .zip(&labels)
        .zip(colors)
        .map(|((m, label), color)| {
            let (r, p) = m.pr_curve();
            Series { label, color, points: r.into_iter().zip(p).collect() }
        })
        .collect();
    let pr = dir.join("pr.png");
    line_chart("precision-recall of boxes", "recall", "precision", 1.0, &series).save(&pr).with_context(|| format!("cannot write {}", pr.display()))?;
    let pro: Vec<(f64, f64)> = ev.pixels.pro_curve(400).into_iter().filter(|p| p.0 <= 0.3).collect();
    let path = dir.join("pro.png");
    line_chart("per-region overlap (AUPRO up to FPR 0.3)", "false-positive rate", "PRO", 0.3, &[Series { label: "PRO", color: [220, 40, 40], points: pro }])
        .save(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn write_annotated(dir: &Path, path: &Path, img: &RgbImage, det: &Detector, d: &poolwatch::Detection) -> Result<()> {
    let status = format!("{} swimmer(s)  thr {:.3}  {:.1} ms", d.boxes.len(), d.threshold, d.timings.total);
    let annotated = poolwatch::overlay::annotate(img, det.heatmap(), d.threshold, &d.boxes, &status);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("frame");
    let out = dir.join(format!("{stem}.jpg"));
    annotated.save(&out).with_context(|| format!("cannot write {}", out.display()))
}

#[allow(clippy::too_many_arguments)]
fn synth(out: &Path, frames: u64, swimmers: &str, seed: u64, size: &str, scenes: u32, interval: f32, start: f32, format: &str) -> Result<ExitCode> {
    let (width, height) = parse_size(size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let swimmers = parse_range(swimmers).map_err(|e| anyhow::anyhow!("--swimmers: {e}"))?;
    if format != "jpg" && format != "png" {
        bail!("--format: '{format}' is not jpg or png");
    }
    if scenes == 0 || !(interval >= 0.0) || !(start >= 0.0) {
        bail!("--scenes must be at least 1, --interval and --start not negative");
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let settings = SynthSettings { width, height, swimmers, seed, scenes, interval };
    let mut scene: Option<(u64, Scene)> = None;
    let mut img = RgbImage::new(width, height);
    for i in 0..frames {
        let (scene_seed, t) = frame_plan(&settings, frames, i);
        if scene.as_ref().is_none_or(|(s, _)| *s != scene_seed) {
            scene = Some((scene_seed, Scene::new(scene_seed, width, height, swimmers)));
        }
        let Some((_, sc)) = &scene else { unreachable!() };
        let noise_seed = seed.wrapping_mul(31).wrapping_add(i).wrapping_add((start * 1000.0) as u64);
        let truth = sc.render_into(start + t, noise_seed, &mut img);
        let name = format!("{i:06}.{format}");
        let path = out.join(&name);
        img.save(&path).with_context(|| format!("cannot write {}", path.display()))?;
        let ann = OwnAnnotation {
            image: name,
            width,
            height,
            boxes: truth
                .iter()
                .map(|t| OwnBox {
                    x1: t.bbox.x1,
                    y1: t.bbox.y1,
                    x2: t.bbox.x2,
                    y2: t.bbox.y2,
                    label: "swimmer".into(),
                    lane: Some(t.lane),
                    distance_m: Some(t.distance_m),
                })
                .collect(),
            pool: Some(sc.pool_corners().to_vec()),
        };
        write_own(&out.join(format!("{i:06}.json")), &ann)?;
    }
    log::info!("wrote {frames} frames to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn info(path: &Path, json: bool) -> Result<ExitCode> {
    let proto = poolwatch::model::infer::read_proto(path)?;
    let meta = poolwatch::model::ModelMeta::from_proto(path, &proto)?;
    // Loading through tract proves the device can run it.
    Autoencoder::from_proto(path, &proto)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let cal = meta.calibration.as_ref().map(|c| {
        serde_json::json!({"frames": c.frames, "quantile": c.quantile, "threshold": c.threshold,
            "raw_threshold": c.raw_threshold, "heatmap": c.heatmap})
    });
    let arch = meta.arch.as_ref().map(|a| {
        serde_json::json!({"name": a.name, "channels": a.channels, "kernels": a.kernels, "upsample": a.upsample,
            "macs_per_frame": a.macs(meta.width, meta.height)})
    });
    let v = serde_json::json!({
        "file": path.display().to_string(), "bytes": size, "input": format!("{}x{}", meta.width, meta.height),
        "quantization": meta.quantization, "arch": arch, "preprocess": meta.preprocess, "calibration": cal,
        "training": meta.training,
    });
    if json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn mask(image: &Path, out: &Path, config: Option<PathBuf>, preview: Option<PathBuf>) -> Result<ExitCode> {
    let spec = match config {
        Some(c) => load_config(Some(&c))?.pool.map(|p| p.mask).unwrap_or(MaskSpec::Auto),
        None => MaskSpec::Auto,
    };
    let img = load_rgb(image)?;
    let m = spec.build(&img)?;
    m.save(out).with_context(|| format!("cannot write {}", out.display()))?;
    let share = m.pixels().filter(|p| p[0] > 0).count() as f64 / (m.width() * m.height()) as f64;
    log::info!("pool covers {:.1}% of the image", share * 100.0);
    if let Some(p) = preview {
        poolwatch::pool::preview(&img, &m).save(&p).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
