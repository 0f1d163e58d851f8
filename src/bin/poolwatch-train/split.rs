//! `poolwatch-train split`: a file of several networks taken apart, one file per network.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// A model file of several networks (`train --models 2`, `merge`).
    model: PathBuf,
    /// Where to write them (default: beside it): MODEL.net1.onnx, MODEL.net2.onnx, ...
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

pub fn main(a: Args) -> Result<()> {
    let dir = a.out_dir.unwrap_or_else(|| a.model.parent().map(PathBuf::from).unwrap_or_default());
    let name = a.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    let proto = poolwatch::pipeline::model::infer::read_proto(&a.model)?;
    let parts = poolwatch::train::networks::split(&a.model, &proto)?;
    for (k, part) in parts.iter().enumerate() {
        let out = dir.join(format!("{name}.net{}.onnx", k + 1));
        poolwatch::train::onnx::write_proto(&out, part)?;
        log::info!("{}: network {} of {}, with its own calibration", out.display(), k + 1, parts.len());
    }
    Ok(())
}
