//! `poolwatch synth`: synthetic pool frames with exact annotations.

use anyhow::{Result, bail};
use poolwatch::device::record::ImageFormat;
use poolwatch::pipeline::model::contract::parse_size;
use poolwatch::synth::{Camera, SynthSettings, parse_range};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
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
    /// The camera: overhead (in the stands, above the water) or underwater (below the surface,
    /// looking along the lanes; the truth boxes the body, not its bubbles).
    #[arg(long, default_value = "overhead")]
    camera: String,
    /// The overhead camera's first swimmer stops and floats: FROM+SECONDS, e.g. 20+30 (scene time).
    #[arg(long, value_name = "FROM+SECONDS")]
    stop: Option<String>,
    /// Image format: jpg or png.
    #[arg(long, default_value = "jpg")]
    format: String,
}

pub fn main(a: Args) -> Result<ExitCode> {
    let (width, height) = parse_size(&a.size).map_err(|e| anyhow::anyhow!("--size: {e}"))?;
    let swimmers = parse_range(&a.swimmers).map_err(|e| anyhow::anyhow!("--swimmers: {e}"))?;
    let Some(format) = ImageFormat::parse(&a.format) else {
        bail!("--format: '{}' is not jpg or png", a.format);
    };
    if a.scenes == 0 || a.interval.is_nan() || a.interval < 0.0 || a.start.is_nan() || a.start < 0.0 {
        bail!("--scenes must be at least 1, --interval and --start not negative");
    }
    let Some(camera) = Camera::parse(&a.camera) else {
        bail!("--camera: '{}' is not overhead or underwater", a.camera);
    };
    let stop = a.stop.as_deref().map(poolwatch::synth::parse_stop).transpose().map_err(|e| anyhow::anyhow!("--stop: {e}"))?;
    if stop.is_some() && camera != Camera::Overhead {
        bail!("--stop: only the overhead camera has swimmers who stop");
    }
    let settings = SynthSettings { width, height, swimmers, seed: a.seed, scenes: a.scenes, interval: a.interval, camera, stop };
    poolwatch::tools::dataset::write_synthetic(&a.out, &settings, a.frames, a.start, format)?;
    log::info!("wrote {} frames to {}", a.frames, a.out.display());
    Ok(ExitCode::SUCCESS)
}
