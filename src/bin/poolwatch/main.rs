//! `poolwatch`: the device-side command line. Parses arguments and dispatches to one file per
//! subcommand; what two subcommands share lives in the library.

// `common` first: its `out!` macro is used by the subcommands below.
#[macro_use]
mod common;
mod bench;
mod check_config;
mod detect;
mod eval;
mod info;
mod mask;
mod record;
mod run;
mod synth;

use clap::{Parser, Subcommand};
use common::{Usage, one_line};
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
    Run(run::Args),
    /// Check a config file (and that its model loads); prints what it would run. Exit 2 if invalid.
    CheckConfig(check_config::Args),
    /// Save raw frames from the config's source, for retraining on the desktop.
    Record(record::Args),
    /// Detect swimmers in images or directories of images; one JSON line per image on stdout.
    Detect(detect::Args),
    /// Write synthetic pool frames with exact swimmer annotations.
    Synth(synth::Args),
    /// Measure the detector on annotated frames: box recall, precision, F1, false boxes per frame and
    /// AP at IoU 0.3 and 0.5; pixel AUROC; AUPRO; image AUROC with --normal frames.
    Eval(eval::Args),
    /// Time every stage of the pipeline on synthetic frames: medians, p99, frames per second, peak memory.
    Bench(bench::Args),
    /// Print a model's metadata.
    Info(info::Args),
    /// Show the pool mask automatic detection (or the config's mask) finds for an image.
    Mask(mask::Args),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,tract_linalg=warn")).format_timestamp_millis().init();
    let result = match Cli::parse().command {
        Command::Run(a) => run::main(a),
        Command::CheckConfig(a) => check_config::main(a),
        Command::Record(a) => record::main(a),
        Command::Detect(a) => detect::main(a),
        Command::Synth(a) => synth::main(a).map_err(Usage),
        Command::Info(a) => info::main(a).map_err(Usage),
        Command::Bench(a) => bench::main(a).map_err(Usage),
        Command::Eval(a) => eval::main(a),
        Command::Mask(a) => mask::main(a).map_err(Usage),
    };
    match result {
        Ok(code) => code,
        Err(Usage(e)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}
