//! `poolwatch-train upgrade`: a model from an earlier version rewritten in the current graph form (float
//! models) and with an integrity hash.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    /// Where to write it (default: in place).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn main(a: Args) -> Result<()> {
    let out = a.out.unwrap_or_else(|| a.model.clone());
    // Each network of the file is rewritten on its own.
    let mut changed = false;
    poolwatch::train::networks::each_network(&a.model, &out, |src, dst| -> Result<()> {
        changed |= poolwatch::train::onnx::upgrade_file(src, dst)?;
        Ok(())
    })?;
    log::info!("{}: {}", out.display(), if changed { "rewritten in the current graph form, with an integrity hash" } else { "graph already in the current form; integrity hash written" });
    Ok(())
}
