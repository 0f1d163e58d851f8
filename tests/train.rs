//! The trainer with libtorch: the loss falls, resume continues exactly, export round-trips through
//! tract, bad input fails clearly. Runs with `--features train`.
#![cfg(feature = "train")]

use poolwatch::train::augment::AugmentSettings;
use poolwatch::train::dataset::{Dataset, DatasetSpec};
use poolwatch::pipeline::heatmap::HeatmapSettings;
use poolwatch::pipeline::model::{Arch, Autoencoder, Preprocess};
use poolwatch::pipeline::pool::{MaskSpec, PoolSettings};
use poolwatch::synth::Scene;
use poolwatch::train::{DeviceChoice, LrSchedule, NonPoolTarget, TrainSettings, train};
use std::path::Path;

fn frames(dir: &Path, n: u64) {
    let scene = Scene::new(21, 128, 96, (0, 0));
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        scene.render(i as f32 * 0.5, i).0.save(dir.join(format!("{i:03}.png"))).unwrap();
    }
}

fn settings(arch: &str, epochs: usize) -> TrainSettings {
    TrainSettings {
        arch: Arch::by_name(arch).unwrap(),
        width: 64,
        height: 48,
        epochs,
        batch: 4,
        lr: 3e-3,
        lr_schedule: LrSchedule::Constant,
        weight_decay: 1e-4,
        dropout: 0.0,
        seed: 3,
        patience: 0,
        augment: AugmentSettings::default(),
        nonpool_target: NonPoolTarget::None,
        nonpool_weight: 0.0,
        preprocess: Preprocess::default(),
        heatmap: HeatmapSettings::default(),
        auto_blur: true,
        pool: PoolSettings { mask: MaskSpec::None, erode: 0 },
    }
}

fn data(dir: &Path) -> Dataset {
    Dataset::load(&DatasetSpec { normal: vec![dir.to_path_buf()], inpaint: vec![], footage: vec![], footage_settings: Default::default(), footage_found: Default::default(), mask: MaskSpec::None, val_fraction: 0.25, max_size: (128, 96) })
        .unwrap()
}

#[test]
fn trains_exports_resumes_and_refuses_bad_checkpoints() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    frames(&dir.path().join("empty"), 12);
    let data = data(&dir.path().join("empty"));
    assert_eq!((data.train.len(), data.val.len()), (9, 3));

    // A straight run of 10 epochs: the loss falls, the export matches libtorch, calibration is stored.
    // Into a folder that is not there yet (libtorch failed on the first checkpoint, after an epoch).
    let straight = dir.path().join("models/new/straight.onnx");
    let s = settings("6,12:3,3:resize", 10);
    let sum = train(&s, &data, &straight, None, DeviceChoice::Cpu, false).unwrap();
    assert_eq!(sum.epochs_run, 10);
    // The thread count that shaped the model's float sums is in its summary (model and report).
    assert!(sum.threads >= 1, "{}", sum.threads);
    let last = |v: &[f64]| v[v.len() - 3..].iter().copied().fold(f64::INFINITY, f64::min);
    assert!(last(&sum.train_loss) < sum.train_loss[0] * 0.7, "loss should fall: {:?}", sum.train_loss);
    assert!(last(&sum.val_loss) < sum.val_loss[0] * 0.7, "{:?}", sum.val_loss);
    assert!(sum.export_max_diff <= 1e-3);
    let model = Autoencoder::load(&straight).unwrap();
    let cal = model.meta().calibration.clone().expect("calibrated");
    assert_eq!(cal.frames, 3);
    assert!(cal.noise_area.is_some_and(|a| (0.0..1.0).contains(&a)), "noise grain measured: {:?}", cal.noise_area);
    assert_eq!(model.meta().training["summary"]["epochs_run"], 10);
    // `poolwatch-train calibrate` on the same held-out frames gives the same calibration.
    let held = dir.path().join("held");
    std::fs::create_dir_all(&held).unwrap();
    for i in 9..12 {
        std::fs::copy(dir.path().join(format!("empty/{i:03}.png")), held.join(format!("{i:03}.png"))).unwrap();
    }
    let again = dir.path().join("again.onnx");
    std::fs::copy(&straight, &again).unwrap();
    // `poolwatch-train calibrate` on `again` with the held-out frames and these options.
    let calibrate = |options: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_poolwatch-train"))
            .args(["calibrate", again.to_str().unwrap(), "--normal", held.to_str().unwrap()])
            .args(options)
            .output()
            .unwrap()
    };
    let o = calibrate(&["--mask", "none"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recal = Autoencoder::load(&again).unwrap().meta().calibration.clone().unwrap();
    assert_eq!((recal.threshold, recal.raw_threshold, recal.noise_area, recal.frames), (cal.threshold, cal.raw_threshold, cal.noise_area, 3));
    // Both chose the smoothing from the noise grain (`--blur-sigma auto`, the default) and agree on it.
    assert_eq!(recal.heatmap.blur_sigma, cal.heatmap.blur_sigma);
    use poolwatch::train::calibrate::{MAX_AUTO_BLUR, REFERENCE_BLUR};
    assert!((REFERENCE_BLUR..=MAX_AUTO_BLUR).contains(&cal.heatmap.blur_sigma), "{}", cal.heatmap.blur_sigma);
    assert_eq!(model.meta().training["settings"]["auto_blur"], true);
    // A fixed smoothing is calibrated at and recorded; a bad one is refused before anything is written.
    assert!(calibrate(&["--blur-sigma", "3"]).status.success());
    let fixed = Autoencoder::load(&again).unwrap().meta().calibration.clone().unwrap();
    assert_eq!(fixed.heatmap.blur_sigma, 3.0);
    assert_ne!(fixed.threshold, cal.threshold);
    let o = calibrate(&["--blur-sigma", "wide"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("neither auto nor a smoothing"), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(Autoencoder::load(&again).unwrap().meta().calibration.clone().unwrap().heatmap.blur_sigma, 3.0);
    // The brightness weight: training's default is recorded, recalibration keeps the model's unless
    // given, a new one changes the measured thresholds, and a bad one is refused.
    assert_eq!(cal.heatmap.brightness_weight, poolwatch::pipeline::heatmap::BRIGHTNESS_WEIGHT);
    assert_eq!(fixed.heatmap.brightness_weight, cal.heatmap.brightness_weight);
    let weigh = |w: &str| calibrate(&["--blur-sigma", "3", "--brightness-weight", w]);
    assert!(weigh("1").status.success());
    let plain = Autoencoder::load(&again).unwrap().meta().calibration.clone().unwrap();
    assert_eq!(plain.heatmap.brightness_weight, 1.0);
    assert_ne!(plain.threshold, fixed.threshold);
    let o = weigh("11");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a weight in [0, 10]"), "{}", String::from_utf8_lossy(&o.stderr));
    let report = straight.with_extension("report");
    assert!(report.join("loss.png").is_file() && report.join("report.json").is_file());
    assert!(report.join("examples/val0.jpg").is_file());

    // The int8 twin runs in tract, holds integer convolutions, is calibrated, and stays close.
    let q = poolwatch::train::int8::int8_path(&straight);
    let imgs: Vec<_> = data.train.iter().map(|s| &s.image).collect();
    let val: Vec<_> = data.val.iter().map(|s| &s.image).collect();
    let r = poolwatch::train::int8::make_int8(&straight, &q, &imgs, &val, &s.pool).unwrap();
    assert!(r.mean_abs_diff < 0.03 && r.float_ms > 0.0 && r.int8_ms > 0.0, "{r:?}");
    let qm = Autoencoder::load(&q).unwrap();
    assert_eq!(qm.meta().quantization, "int8");
    assert!(qm.meta().calibration.is_some());
    let proto = poolwatch::pipeline::model::infer::read_proto(&q).unwrap();
    let convs = proto.graph.unwrap().node.iter().filter(|n| n.op_type == "QLinearConv").count();
    // Four layers: the first and the last stay float.
    assert_eq!(convs, 2);

    // 5 epochs, then resume to 10: the same losses and the same weights as the straight run.
    let split = dir.path().join("split.onnx");
    train(&settings("6,12:3,3:resize", 5), &data, &split, None, DeviceChoice::Cpu, false).unwrap();
    let ckpt = split.with_extension("ckpt");
    assert!(ckpt.is_file());
    let resumed = train(&s, &data, &split, Some(&ckpt), DeviceChoice::Cpu, false).unwrap();
    assert_eq!(resumed.train_loss.len(), 10);
    for (a, b) in resumed.train_loss.iter().zip(&sum.train_loss) {
        assert!((a - b).abs() < 1e-6 * b.abs().max(1e-6), "resumed {:?} vs straight {:?}", resumed.train_loss, sum.train_loss);
    }
    let mut a = Autoencoder::load(&straight).unwrap();
    let mut b = Autoencoder::load(&split).unwrap();
    let input = vec![0.4f32; 3 * 64 * 48];
    let ra = a.reconstruct(&input).unwrap().to_vec();
    let rb = b.reconstruct(&input).unwrap().to_vec();
    let diff = ra.iter().zip(&rb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff < 1e-5, "resumed weights differ by {diff}");

    // A schedule is recorded with the model's training settings and changes the run: the straight run's
    // constant rate, then the same run with its rate brought down over the last fifth.
    assert_eq!(model.meta().training["settings"]["lr_schedule"], "constant");
    let tail = dir.path().join("tail.onnx");
    let ts = TrainSettings { lr_schedule: LrSchedule::Tail, ..s.clone() };
    let tsum = train(&ts, &data, &tail, None, DeviceChoice::Cpu, false).unwrap();
    assert_eq!(Autoencoder::load(&tail).unwrap().meta().training["settings"]["lr_schedule"], "tail");
    // The first 80 % of the steps run at the same rate as the constant run: the same losses; after, others.
    let same = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1e-6);
    assert!(tsum.train_loss[..8].iter().zip(&sum.train_loss[..8]).all(|(a, b)| same(*a, *b)), "{:?} vs {:?}", tsum.train_loss, sum.train_loss);
    assert!(!same(tsum.train_loss[9], sum.train_loss[9]), "{:?} vs {:?}", tsum.train_loss, sum.train_loss);

    // A checkpoint of another architecture is refused with a clear message.
    let other = settings("6,12:3,5:resize", 3);
    let e = train(&other, &data, &dir.path().join("o.onnx"), Some(&ckpt), DeviceChoice::Cpu, false).unwrap_err().to_string();
    assert!(e.contains("architecture") && e.contains("split.ckpt"), "{e}");
    // Not a checkpoint at all.
    let junk = dir.path().join("junk.ckpt");
    std::fs::write(&junk, b"junk").unwrap();
    let e = train(&s, &data, &dir.path().join("j.onnx"), Some(&junk), DeviceChoice::Cpu, false).unwrap_err().to_string();
    assert!(e.contains("junk.ckpt"), "{e}");
}

#[test]
fn convtranspose_models_export_too() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    frames(&dir.path().join("empty"), 8);
    let data = data(&dir.path().join("empty"));
    let out = dir.path().join("ct.onnx");
    let sum = train(&settings("6,12:3,5:convtranspose", 1), &data, &out, None, DeviceChoice::Cpu, false).unwrap();
    assert!(sum.export_max_diff <= 1e-3);
    assert!(Autoencoder::load(&out).is_ok());
}

#[test]
fn cuda_when_there_is_none_is_a_clear_error() {
    if tch::Cuda::is_available() {
        assert!(DeviceChoice::Cuda.resolve().is_ok());
    } else {
        let e = DeviceChoice::Cuda.resolve().unwrap_err().to_string();
        assert!(e.contains("no CUDA GPU"), "{e}");
        assert_eq!(DeviceChoice::Auto.resolve().unwrap(), tch::Device::Cpu);
    }
}

/// `poolwatch-train train --footage` end to end through the binaries: a recording of the demo venue
/// with 1 to 4 swimmers in every frame and no annotations trains and calibrates a model; the report
/// shows what was left out (six frames tinted, every frame's share); too short a recording is a
/// one-line error and writes no model.
///
/// How well such a model finds swimmers is measured, not asserted here: on the overhead venues (150
/// frames a second apart, the next 30 scored, `--mask auto`) the 160-wide analysis of motion is too
/// coarse for the swimmers, so it is measured again 320 wide (asserted below), and one round finds
/// recall 0.878-0.890 at 0.00-0.07 false boxes a frame on the recording of venue seed 3 (training seeds
/// 1-3; none without the finer look) and 0.02-0.14 on venue seed 4's; issue 20's aim is recall >= 0.9
/// at <= 0.1 (docs/accuracy.md, sessions 19 and 26; `footage::tests` and `selftrain::tests` check the
/// analysis and the second round's finding themselves).
#[test]
fn footage_without_annotations_trains_reports_what_it_left_out_and_refuses_too_little() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let run = |exe: &str, args: &[&str]| {
        let o = std::process::Command::new(exe).args(args).env("RUST_LOG", "warn").output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let pw = env!("CARGO_BIN_EXE_poolwatch");
    let trainer = env!("CARGO_BIN_EXE_poolwatch-train");
    let (code, _, err) = run(pw, &["synth", "--out", rec.to_str().unwrap(), "--frames", "40", "--swimmers", "2..4", "--seed", "1", "--size", "320x240", "--format", "png"]);
    assert_eq!(code, Some(0), "{err}");
    // The frames only: annotations stay behind.
    let footage = dir.path().join("footage");
    std::fs::create_dir_all(&footage).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&rec).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    names.sort();
    assert_eq!(names.len(), 40);
    for p in &names {
        std::fs::copy(p, footage.join(p.file_name().unwrap())).unwrap();
    }
    let model = dir.path().join("m.onnx");
    let (code, _, err) = run(
        trainer,
        &["train", "--footage", footage.to_str().unwrap(), "--out", model.to_str().unwrap(), "--size", "128x96", "--epochs", "2", "--footage-rounds", "2", "--quiet"],
    );
    assert_eq!(code, Some(0), "{err}");
    let m = Autoencoder::load(&model).unwrap();
    assert!(m.meta().members.is_empty(), "one network by default with --footage");
    let cal = m.meta().calibration.clone().expect("calibrated on the held-out footage");
    assert_eq!(cal.frames, 6, "the last 15 % of 40 frames");
    assert_eq!(m.meta().training["summary"]["footage_frames"], 40);
    let report = model.with_extension("report");
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(report.join("report.json")).unwrap()).unwrap();
    let f = &j["footage"][0];
    let frames = f["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 40);
    assert!(frames.iter().all(|x| (0.0..=1.0).contains(&x["fraction_left_out"].as_f64().unwrap())), "{frames:?}");
    assert!(frames[0]["frame"].as_str().unwrap().ends_with("000000.png"));
    // The overhead camera's swimmers are too small for the coarse analysis of motion (160 wide): it is
    // measured again finer (320 wide, here the 256-wide working frames), which leaves them out of
    // nearly every frame.
    assert_eq!(f["motion_analysis_width"], 256, "{f}");
    let left = frames.iter().filter(|x| x["fraction_left_out"].as_f64().unwrap() > 0.0).count();
    assert!(left >= 36, "something left out in {left} of 40 frames");
    // The second round looked again (what the first model found unusual where nothing moved).
    assert!(f["frames_with_what_the_first_model_found"].as_u64().is_some(), "{f}");
    let examples = f["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 6);
    for e in examples {
        let p = report.join("examples").join(e.as_str().unwrap());
        assert_eq!(image::image_dimensions(&p).unwrap(), (256, 192), "{} at the working size", p.display());
    }
    // Too short a recording: a clear one-line error, exit 2, no model.
    let short = dir.path().join("short");
    std::fs::create_dir_all(&short).unwrap();
    for p in names.iter().take(8) {
        std::fs::copy(p, short.join(p.file_name().unwrap())).unwrap();
    }
    let bad = dir.path().join("bad.onnx");
    let (code, _, err) = run(trainer, &["train", "--footage", short.to_str().unwrap(), "--out", bad.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("too few") && err.trim().lines().count() == 1, "{err}");
    assert!(!bad.exists());
    // Rounds out of range: clap's one-line error.
    let (code, _, err) = run(trainer, &["train", "--footage", footage.to_str().unwrap(), "--out", bad.to_str().unwrap(), "--footage-rounds", "0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--footage-rounds"), "{err}");
    // Neither --normal nor --footage: clap names both.
    let (code, _, err) = run(trainer, &["train", "--out", bad.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--normal") && err.contains("--footage"), "{err}");
}

/// `poolwatch-train train` (two networks by default) end to end through the binaries: three candidates
/// (seeds 3, 1003, 2003) look for bodies pasted into the held-out frames, the one that finds the fewest
/// is left out, the other two go into one file in their order, each calibrated; the device runs both
/// or (`--networks 1`) the first alone, which detects as that network's own file does; `merge` puts
/// two files together the same way; calibrate and quantize work on each network of the file.
#[test]
fn two_networks_train_into_one_file_that_the_device_runs_whole_or_halved() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    frames(&empty, 24);
    let run = |exe: &str, args: &[&str]| {
        let o = std::process::Command::new(exe).args(args).env("RUST_LOG", "warn").output().unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let pw = env!("CARGO_BIN_EXE_poolwatch");
    let trainer = env!("CARGO_BIN_EXE_poolwatch-train");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let train = |out: &Path, extra: &[&str]| {
        let mut args = vec!["train".to_string(), "--normal".into(), s(&empty), "--out".into(), s(out), "--size".into(), "64x48".into(), "--epochs".into(), "2".into(), "--quiet".into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(trainer, &args)
    };
    let pair = dir.path().join("pair.onnx");
    let (code, _, err) = train(&pair, &["--seed", "3"]);
    assert_eq!(code, Some(0), "{err}");
    let info = |p: &Path| -> serde_json::Value {
        let (code, out, err) = run(pw, &["info", &s(p)]);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let i = info(&pair);
    assert_eq!(i["networks"], 2, "{i}");
    // The candidates, their self-checks and which two were kept.
    let list: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(pair.with_extension("report").join("networks.json")).unwrap()).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.iter().map(|c| c["seed"].as_u64().unwrap()).collect::<Vec<_>>(), [3, 1003, 2003]);
    let f1: Vec<f64> = list.iter().map(|c| c["probe"]["f1"].as_f64().unwrap()).collect();
    // Three copies of each held-out frame, two bodies in each.
    assert!(list.iter().all(|c| c["probe"]["frames"].as_u64().is_some_and(|f| f > 0 && f % 3 == 0) && c["probe"]["bodies"] == 2 * c["probe"]["frames"].as_u64().unwrap()), "{list:?}");
    let left_out = list.iter().position(|c| c["kept"].is_null()).expect("one candidate left out");
    assert!(f1.iter().all(|&v| v >= f1[left_out]), "the one left out found the fewest: {f1:?}");
    let kept: Vec<u64> = list.iter().filter(|c| !c["kept"].is_null()).map(|c| c["seed"].as_u64().unwrap()).collect();
    assert_eq!(list.iter().filter_map(|c| c["kept"].as_u64()).collect::<Vec<_>>(), [1, 2], "kept in the candidates' order");
    assert_eq!(i["training"]["settings"]["seed"].as_u64(), Some(kept[0]));
    assert_eq!(i["members"][0]["training"]["settings"]["seed"].as_u64(), Some(kept[1]), "{i}");
    assert!(i["training"]["probe"]["recall"].as_f64().is_some(), "the self-check is in the model: {i}");
    assert_eq!(i["members"][0]["output"], "reconstruction.2");
    assert!(i["members"][0]["calibration"]["threshold"].as_f64().unwrap() > 0.0);
    // The candidates' own files are gone into the pair; their reports stay.
    assert!(!pair.with_extension("net2.onnx").exists() && !pair.with_extension("net3.onnx").exists());
    assert!(pair.with_extension("net3.report").join("report.json").exists());

    // Two single-network files merged: run as one network, the file detects as its first network does.
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    for (m, seed) in [(&a, "5"), (&b, "6")] {
        let (code, _, err) = train(m, &["--seed", seed, "--models", "1"]);
        assert_eq!(code, Some(0), "{err}");
    }
    let merged = dir.path().join("ab.onnx");
    let (code, _, err) = run(trainer, &["merge", &s(&a), &s(&b), "--out", &s(&merged)]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(info(&merged)["networks"], 2);
    let test = dir.path().join("test");
    let (code, _, err) = run(pw, &["synth", "--out", &s(&test), "--frames", "6", "--swimmers", "2..3", "--seed", "21", "--size", "128x96"]);
    assert_eq!(code, Some(0), "{err}");
    let eval = |m: &Path, extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["eval", "--model", m.to_str().unwrap(), "--test", test.to_str().unwrap(), "--json"];
        args.extend(extra);
        let (code, out, err) = run(pw, &args);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let (first, halved, both) = (eval(&a, &[]), eval(&merged, &["--networks", "1"]), eval(&merged, &[]));
    assert_eq!(first["box"], halved["box"], "the file run as one network is its first network");
    assert_eq!(first["pixel_auroc"], halved["pixel_auroc"]);
    assert_ne!(first["pixel_auroc"], both["pixel_auroc"], "both networks' heatmaps averaged differ from the first's");
    let (code, out, err) = run(pw, &["bench", "--model", &s(&merged), "--frames", "3", "--size", "128x96", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["networks"], 2);

    // Calibrated again: each network on its own, both kept.
    let before = info(&merged);
    let (code, _, err) = run(trainer, &["calibrate", &s(&merged), "--normal", &s(&empty), "--blur-sigma", "3"]);
    assert_eq!(code, Some(0), "{err}");
    let after = info(&merged);
    assert_eq!(after["networks"], 2);
    for j in [&after["calibration"], &after["members"][0]["calibration"]] {
        assert_eq!(j["heatmap"]["blur_sigma"], 3.0, "{after}");
        assert_eq!(j["frames"], 24);
    }
    assert_ne!(before["members"][0]["calibration"]["threshold"], after["members"][0]["calibration"]["threshold"]);
    assert_eq!(after["members"][0]["training"]["settings"]["seed"], 6);
    // Quantised: each network on its own, into one int8 file of two.
    let int8 = dir.path().join("ab.int8.onnx");
    let (code, out, err) = run(trainer, &["quantize", &s(&merged), "--normal", &s(&empty)]);
    assert_eq!(code, Some(0), "{err}");
    let reports: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reports.as_array().map(Vec::len), Some(2), "{reports}");
    let q = info(&int8);
    assert_eq!((q["networks"].as_u64(), q["quantization"].as_str()), (Some(2), Some("int8")));
    eval(&int8, &[]);
    // The networks' temporary files are gone.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.contains(".net")).collect();
    assert!(left.iter().all(|n| n.starts_with("pair.net2.") || n.starts_with("pair.net3.")), "{left:?}");

    // --resume continues one network's run: refused with several candidates, in one line.
    let (code, _, err) = train(&dir.path().join("r.onnx"), &["--resume", &s(&a.with_extension("ckpt"))]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--resume") && err.trim().lines().count() == 1, "{err}");
    let (code, _, err) = train(&dir.path().join("r.onnx"), &["--models", "2", "--candidates", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--candidates 1 is fewer than --models 2"), "{err}");
    // Merging a file with an uncalibrated or unrelated one: a one-line error naming it.
    let (code, _, err) = run(trainer, &["merge", &s(&a), &s(&empty.join("000.png")), "--out", &s(&dir.path().join("x.onnx"))]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("000.png") && err.trim().lines().count() == 1, "{err}");
}
