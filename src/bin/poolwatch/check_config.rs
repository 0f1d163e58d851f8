//! `poolwatch check-config`: validates a config and says what it would run.

use crate::common::{Usage, usage};
use poolwatch::device::config::Config;
use poolwatch::device::daemon::{RunOptions, load_model};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    config: PathBuf,
}

pub fn main(a: Args) -> Result<ExitCode, Usage> {
    let path = &a.config;
    let cfg = Config::load(path).map_err(usage)?;
    let model = load_model(&cfg, &RunOptions::default()).map_err(usage)?;
    poolwatch::device::preflight::preflight(&cfg, &model, true).map_err(|e| Usage::msg(format!("config {}: {e}", path.display())))?;
    let (w, h) = model.size();
    out!("config {}: ok", path.display());
    out!("  name     {}", cfg.name);
    out!("  model    {} ({w}x{h})", model.path().display());
    out!("  source   {:?}", cfg.source);
    let mut outputs = Vec::new();
    if cfg.stdout.enabled {
        outputs.push("stdout".to_string());
    }
    if let Some(s) = &cfg.serial {
        outputs.push(format!("serial {} {} baud", s.port, s.baud));
    }
    if let Some(m) = &cfg.mqtt {
        outputs.push(format!("mqtt {}:{} under {}/{}/", m.host, m.port, m.topic_prefix, cfg.name));
    }
    if let Some(s) = &cfg.snapshots {
        outputs.push(format!("snapshots {}", s.dir.display()));
    }
    if let Some(h) = &cfg.http {
        outputs.push(format!("http {}", h.listen));
    }
    out!("  outputs  {}", if outputs.is_empty() { "none".to_string() } else { outputs.join(", ") });
    if let Some(l) = &cfg.lanes {
        out!("  lanes    {} over {} m", l.count, l.length_m);
    }
    if let Some(f) = &cfg.setup_file {
        let state = if f.exists() { "its lanes and zones apply" } else { "not written yet" };
        out!("  setup    {} ({state}; the preview's /setup page saves there)", f.display());
    }
    let a = &cfg.alarm;
    match a.enabled {
        true => {
            let still = if cfg.lanes.is_some() { format!("{} m", a.still_m) } else { format!("{} % of the diagonal", a.still_frac * 100.0) };
            let zones: Vec<&str> = cfg.zones.keys().map(String::as_str).collect();
            let zones = if zones.is_empty() { String::new() } else { format!("; zones {}", zones.join(", ")) };
            out!("  alarm    still within {still}: warning after {} s, alarm after {} s{zones}", a.warn_s, a.alarm_s);
        }
        false => out!("  alarm    off"),
    }
    if let Some(h) = cfg.http.as_ref().filter(|h| h.open_beyond_loopback()) {
        eprintln!("warning: [http] listens on {} without a token: anyone who reaches it sees the pool; set http.token", h.listen);
    }
    Ok(ExitCode::SUCCESS)
}
