//! `poolwatch-train`: the desktop companion. Trains the autoencoder on empty-pool frames (libtorch,
//! GPU when there is one) and exports one ONNX file the device runs as it is. Parses arguments and
//! dispatches to one file per subcommand.

mod args;
mod calibrate;
mod merge;
mod split;
mod quantize;
mod train;
mod upgrade;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "poolwatch-train", version, about = "Train poolwatch's autoencoder on empty-pool frames", args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model and export it as ONNX (with calibration and a report beside it).
    Train(Box<train::Args>),
    /// Quantise a float model to int8 (QLinearConv), calibrated and compared on empty frames.
    Quantize(quantize::Args),
    /// Rewrite a float model from an earlier version in the current graph form (the sub-pixel decoder,
    /// 2-3x fewer operations): same weights, metadata and calibration. Quantise again afterwards.
    Upgrade(upgrade::Args),
    /// Re-measure a model's calibration on held-out empty frames.
    Calibrate(calibrate::Args),
    /// Put calibrated models of one venue (e.g. two training seeds) into one file: the device averages
    /// their heatmaps, which evens out what one training run alone gets wrong.
    Merge(merge::Args),
    /// Take a file of several networks apart: one file per network, each with its own calibration.
    Split(split::Args),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).format_timestamp_millis().init();
    let result = match Cli::parse().command {
        Command::Train(a) => train::main(*a),
        Command::Quantize(a) => quantize::main(a),
        Command::Upgrade(a) => upgrade::main(a),
        Command::Calibrate(a) => calibrate::main(a),
        Command::Merge(a) => merge::main(a),
        Command::Split(a) => split::main(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(2)
        }
    }
}
