//! `poolwatch-train quantize`: the int8 twin of a float model, calibrated and compared with it.

use crate::args::MaskArgs;
use anyhow::{Context, Result};
use poolwatch::pipeline::model::Autoencoder;
use poolwatch::train::dataset::{Dataset, DatasetSpec};
use poolwatch::train::int8::{Int8Report, int8_path, make_int8};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    model: PathBuf,
    /// Empty-pool frames: the first 85 % set activation ranges, the rest calibrate.
    #[arg(long, required = true, num_args = 1..)]
    normal: Vec<PathBuf>,
    /// Where to write it (default: MODEL.int8.onnx).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    mask: MaskArgs,
}

pub fn main(a: Args) -> Result<()> {
    let pool = a.mask.pool()?;
    let size = Autoencoder::load(&a.model)?.size();
    let spec = DatasetSpec { normal: a.normal, inpaint: vec![], footage: vec![], footage_settings: Default::default(), footage_found: Default::default(), mask: pool.mask.clone(), val_fraction: 0.15, max_size: (size.0 * 2, size.1 * 2) };
    let data = Dataset::load(&spec)?;
    let out = a.out.unwrap_or_else(|| int8_path(&a.model));
    let train: Vec<_> = data.train.iter().map(|s| &s.image).collect();
    let val: Vec<_> = data.val.iter().map(|s| &s.image).collect();
    // Each network of the file is quantised on its own.
    let mut report = Vec::new();
    poolwatch::train::networks::each_network(&a.model, &out, |src, dst| -> Result<()> {
        // Named by the file it ends up in, not the network's temporary one.
        report.push(Int8Report { path: out.clone(), ..make_int8(src, dst, &train, &val, &pool)? });
        Ok(())
    })?;
    let report = if report.len() == 1 { serde_json::to_value(&report[0])? } else { serde_json::to_value(&report)? };
    // A reader gone (`| head`) ends the output quietly; println! would panic.
    match writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&report)?) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.context("cannot write the report to stdout")?,
    }
    Ok(())
}
