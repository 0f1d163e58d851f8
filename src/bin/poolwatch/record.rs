//! `poolwatch record`: raw frames from the config's source into a directory.

use crate::common::{Usage, load_config, usage};
use poolwatch::device::record::{ImageFormat, RecordError, record};
use poolwatch::device::signals::Signals;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn main(a: Args) -> Result<ExitCode, Usage> {
    let format = ImageFormat::parse(&a.format).ok_or_else(|| Usage::msg("--format must be jpg or png"))?;
    if a.every == 0 {
        return Err(Usage::msg("--every must be at least 1"));
    }
    let cfg = load_config(a.config.as_deref()).map_err(Usage)?;
    std::fs::create_dir_all(&a.out).map_err(|e| Usage::msg(format!("cannot create {}: {e}", a.out.display())))?;
    poolwatch::media::images::set_max_pixels(cfg.pipeline.max_pixels);
    let signals = Signals::install().map_err(usage)?;
    match record(cfg.source, &a.out, a.frames, a.every, format, signals.stop) {
        Ok(saved) => {
            log::info!("saved {saved} frames in {}", a.out.display());
            Ok(if saved == 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Err(e @ RecordError::Source(_)) => Err(usage(e)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
