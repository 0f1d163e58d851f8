//! `poolwatch mask`: the pool mask found for an image.

use crate::common::load_config;
use anyhow::{Context, Result};
use poolwatch::media::images::load_rgb;
use poolwatch::pipeline::pool::MaskSpec;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    image: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// Take the mask from this config instead of automatic detection.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also write the image with the non-pool area darkened.
    #[arg(long)]
    preview: Option<PathBuf>,
}

pub fn main(a: Args) -> Result<ExitCode> {
    let spec = match a.config {
        Some(c) => load_config(Some(&c))?.pool.map(|p| p.mask).unwrap_or(MaskSpec::Auto),
        None => MaskSpec::Auto,
    };
    let img = load_rgb(&a.image)?;
    let m = spec.build(&img)?;
    m.save(&a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    let share = m.pixels().filter(|p| p[0] > 0).count() as f64 / (m.width() * m.height()) as f64;
    log::info!("pool covers {:.1}% of the image", share * 100.0);
    if let Some(p) = a.preview {
        poolwatch::pipeline::pool::preview(&img, &m).save(&p).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
