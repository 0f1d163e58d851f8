//! `poolwatch run`: the daemon.

use crate::common::{Usage, load_config, usage};
use poolwatch::device::daemon::{DaemonError, RunOptions};
use poolwatch::device::source::SourceSettings;
use poolwatch::device::source::stream::StreamFormat;
use poolwatch::pipeline::model::contract::parse_size;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
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
}

pub fn main(a: Args) -> Result<ExitCode, Usage> {
    let mut cfg = load_config(a.config.as_deref()).map_err(Usage)?;
    if let Some(f) = a.fps
        && !(f > 0.0 && f <= 1000.0)
    {
        return Err(Usage::msg("--fps must be in (0, 1000]"));
    }
    let from_file = cfg.source.clone();
    if !a.input.is_empty() {
        let path = a.input.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        cfg.source = SourceSettings::Dir { path, fps: a.fps.unwrap_or(0.0), looping: a.looping };
    } else if let Some(fmt) = a.stdin {
        let format = if fmt == "rgb" { StreamFormat::Rgb } else { StreamFormat::Mjpeg };
        let (width, height) = match a.size {
            Some(s) => parse_size(&s).map_err(|e| Usage::msg(format!("--size: {e}")))?,
            None => (0, 0),
        };
        cfg.source = SourceSettings::Stdin { format, width, height, fps: a.fps.unwrap_or(0.0) };
    } else if let (Some(f), SourceSettings::Synth { fps, .. }) = (a.fps, &mut cfg.source) {
        *fps = f;
    }
    cfg.validate().map_err(usage)?;
    let signals = poolwatch::device::signals::Signals::install().map_err(usage)?;
    let source = (cfg.source != from_file).then(|| cfg.source.clone());
    let opts = RunOptions { config_path: a.config, model: a.model, max_frames: a.frames, source };
    match poolwatch::device::daemon::run(cfg, &opts, signals.stop, signals.reload) {
        Ok(stats) => Ok(if stats.processed == 0 && stats.bad_frames > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }),
        Err(e @ (DaemonError::Model(_) | DaemonError::Source(_) | DaemonError::Http(_) | DaemonError::Mqtt(_) | DaemonError::Preflight(_))) => Err(usage(e)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
