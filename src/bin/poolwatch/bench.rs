//! `poolwatch bench`: stage timings on synthetic frames.

use anyhow::{Result, bail};
use poolwatch::pipeline::model::Autoencoder;
use poolwatch::pipeline::model::contract::parse_size;
use poolwatch::tools::bench::{STAGES, run};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The model (default: the shipped one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// How many of the model file's networks run (default: all).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=poolwatch::pipeline::model::contract::MAX_NETWORKS as u64))]
    networks: Option<usize>,
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
}

pub fn main(a: Args) -> Result<ExitCode> {
    let (w, h) = parse_size(&a.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    if a.frames == 0 || a.threads == 0 || a.threads > 64 {
        bail!("--frames must be at least 1 and --threads in 1..=64");
    }
    let m = Autoencoder::load_or_embedded_with(a.model.as_deref(), a.networks)?;
    let label = a.model.as_ref().map_or_else(|| "embedded".to_string(), |p| p.display().to_string());
    let r = run(m, &label, a.threads, a.frames, w, h)?;
    if a.json {
        out!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let nets = if r.networks > 1 { format!(", {} networks", r.networks) } else { String::new() };
    out!("model {} ({}{nets})  {} frames of {}  {} thread(s)", r.model, r.runtime, r.frames, r.size, r.threads);
    out!("{:<11} {:>9} {:>9}", "stage", "median ms", "p99 ms");
    for s in STAGES {
        out!("{s:<11} {:>9.3} {:>9.3}", r.stages[s], r.p99[s]);
    }
    out!("{:<11} {:>9.3} {:>9.3}", "pipeline", r.pipeline_ms, r.pipeline_p99_ms);
    let over = |ms: f64| (ms / r.infer_ms.max(1e-9) - 1.0) * 100.0;
    out!("{:.1} frames/s; pipeline adds {:.0}% over inference", r.fps, over(r.pipeline_ms));
    out!("detection thread (all but decode, which the daemon's capture thread does) {:.3} ms: adds {:.0}%", r.detector_ms, over(r.detector_ms));
    if let Some(mb) = r.peak_rss_mb {
        out!("peak resident memory {mb:.1} MB");
    }
    Ok(ExitCode::SUCCESS)
}
