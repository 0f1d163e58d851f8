//! `poolwatch-train merge`: models of one venue put into one file whose heatmaps the device averages.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Calibrated models of the same venue, trained alike (the same input size and pre-processing),
    /// e.g. two training seeds; the first leads (its pool mask, smoothing and threshold cut the boxes).
    #[arg(required = true, num_args = 2..)]
    models: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
}

pub fn main(a: Args) -> Result<()> {
    let n = poolwatch::train::networks::merge_files(&a.models, &a.out)?;
    log::info!("{}: {n} networks; the device averages their heatmaps (`[pipeline] networks = 1` runs the first alone)", a.out.display());
    Ok(())
}
