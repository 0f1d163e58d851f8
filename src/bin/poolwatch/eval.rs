//! `poolwatch eval`: accuracy on annotated frames, or (`--timing`) lap timing and the motionless-swimmer
//! alarm on a synthetic recording.

use crate::common::{Usage, load_config, usage};
use poolwatch::pipeline::detect::Detector;
use poolwatch::pipeline::model::Autoencoder;
use poolwatch::tools::eval::{evaluate, write_plots};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: Option<PathBuf>,
    /// Directories (or images) of annotated frames (any supported annotation format).
    #[arg(long, required_unless_present = "timing", num_args = 1..)]
    test: Vec<PathBuf>,
    /// Frames of the empty pool, for image AUROC.
    #[arg(long, num_args = 1..)]
    normal: Vec<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
    /// How many of the model file's networks run (default: the config's `[pipeline] networks`, else
    /// all).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=poolwatch::pipeline::model::contract::MAX_NETWORKS as u64))]
    networks: Option<usize>,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Write PR and PRO curves as PNG here.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Score what the daemon reports: the test frames of each directory are a video, in name order,
    /// run through the tracker (the config's `[tracking]`), and only its confirmed swimmers count.
    #[arg(long)]
    track: bool,
    /// Score lap timing instead: a synthetic pool rendered in memory at 25 frames/s, through the
    /// detector, the tracker, the lanes and the lap timer (the config's settings), against the exact
    /// turns of its swimmers.
    #[arg(long, conflicts_with_all = ["test", "normal", "plots", "track"])]
    timing: bool,
    /// With --timing: seconds of video.
    #[arg(long, default_value_t = 300.0, requires = "timing")]
    seconds: f64,
    /// With --timing: the swimmers (how many, in which lanes, how fast).
    #[arg(long, default_value_t = 1, requires = "timing")]
    seed: u64,
    /// With --timing: the venue (camera and pool); 1 is the demo venue the shipped model was trained
    /// on, another needs its own model (--model).
    #[arg(long, default_value_t = 1, requires = "timing")]
    venue: u64,
    /// With --timing: swimmers, e.g. 1..6 (one per lane at most).
    #[arg(long, default_value = "1..6", requires = "timing")]
    swimmers: String,
    /// With --timing: one swimmer stops and floats for this many seconds (30 when given alone), a
    /// quarter of the way in, and the motionless-swimmer alarm is scored.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "30", requires = "timing")]
    stop: Option<f64>,
}

pub fn main(a: Args) -> Result<ExitCode, Usage> {
    let cfg = load_config(a.config.as_deref()).map_err(Usage)?;
    let model = Autoencoder::load_or_embedded_with(a.model.as_deref().or(cfg.model.as_deref()), a.networks.or(cfg.pipeline.networks)).map_err(usage)?;
    let mut settings = cfg.detector();
    if a.timing {
        // The daemon's pipeline on the venue's own camera: its lanes, as `poolwatch run` takes them.
        settings.lanes = Some(poolwatch::tools::timing::venue_lanes(a.venue));
        return timing(&a, &cfg, &mut Detector::new(model, &settings));
    }
    let mut det = Detector::new(model, &settings);
    let ev = evaluate(&mut det, &a.test, &a.normal, a.track.then_some(&cfg.tracking)).map_err(usage)?;
    let report = ev.report();
    if report.frames == 0 {
        let dirs: Vec<String> = a.test.iter().map(|p| p.display().to_string()).collect();
        return Err(Usage::msg(format!("no annotated frame could be evaluated in {}", dirs.join(", "))));
    }
    if a.json {
        let mut v = serde_json::json!({
            "frames": report.frames, "pixel_auroc": report.pixel_auroc, "aupro": report.aupro,
            "image_auroc": report.image_auroc, "skipped": report.skipped,
        });
        v["box"] = serde_json::to_value(&report.box_metrics).unwrap_or_default();
        out!("{v}");
    } else {
        out!("{} frames ({} skipped)", report.frames, report.skipped);
        out!("IoU   recall  precision  F1     false/frame  AP");
        for (iou, m) in &report.box_metrics {
            out!("{iou:<5} {:<7.3} {:<10.3} {:<6.3} {:<12.3} {:.3}", m.recall, m.precision, m.f1, m.fp_per_frame, m.ap);
        }
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
        out!("pixel AUROC {}  AUPRO(0.3) {}  image AUROC {}", opt(report.pixel_auroc), opt(report.aupro), opt(report.image_auroc));
    }
    if let Some(dir) = a.plots {
        write_plots(&dir, &ev).map_err(usage)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn timing(a: &Args, cfg: &poolwatch::device::config::Config, det: &mut Detector) -> Result<ExitCode, Usage> {
    use poolwatch::tools::timing::{TimingRun, evaluate_timing};
    if !(a.seconds > 0.0 && a.seconds <= 86_400.0) {
        return Err(Usage::msg(format!("--seconds {} must be in (0, 86400]", a.seconds)));
    }
    let swimmers = poolwatch::synth::parse_range(&a.swimmers).map_err(|e| Usage::msg(format!("--swimmers: {e}")))?;
    if let Some(stop) = a.stop
        && !(stop > 0.0 && stop < a.seconds)
    {
        return Err(Usage::msg(format!("--stop {stop} must be more than 0 and less than --seconds ({})", a.seconds)));
    }
    let run = TimingRun { seconds: a.seconds, seed: a.seed, venue: a.venue, swimmers, stop_s: a.stop, ..TimingRun::default() };
    let s = evaluate_timing(det, &cfg.tracking, &cfg.timing, &cfg.alarm, &run).map_err(usage)?;
    if a.json {
        out!("{}", serde_json::to_string(&s).unwrap_or_default());
    } else {
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3} s")).unwrap_or_else(|| "n/a".into());
        out!("{} frames, {} swimmers in {} lanes, {} s", s.frames, s.swimmers, s.lanes, a.seconds);
        out!("lengths: {} swum, {} reported; exact {:.3}", s.laps_true, s.laps_reported, s.laps_exact);
        out!("touch error: median {}, p95 {}", opt(s.touch_error_s_median), opt(s.touch_error_s_p95));
        out!("lanes with the exact count: {} of {}", s.lanes_count_exact, s.lanes_swum);
        if let Some(st) = &s.stop {
            out!(
                "stop: lane {} from {:.1} s for {:.0} s: warning after {}, alarm after {}, cleared {} after it swam on",
                st.lane,
                st.from_s,
                st.seconds,
                opt(st.warning_delay_s),
                opt(st.alarm_delay_s),
                opt(st.clear_delay_s)
            );
        }
        out!("false alarms: {:.1} an hour (warnings {:.1} an hour)", s.false_alarms_per_hour, s.false_warnings_per_hour);
    }
    Ok(ExitCode::SUCCESS)
}
