//! The TOML configuration: types, defaults and validation, with errors that name the key.

use crate::pipeline::boxes::BoxSettings;
use crate::pipeline::detect::DetectorSettings;
use crate::pipeline::heatmap::HeatmapOverrides;
use crate::device::sink::http::HttpSettings;
use crate::pipeline::lanes::LaneSettings;
use crate::pipeline::alarm::AlarmSettings;
use crate::pipeline::timing::TimingSettings;
use crate::pipeline::pool::{MaskSpec, PoolSettings};
use crate::device::sink::mqtt::MqttSettings;
use crate::device::sink::serial::SerialSettings;
use crate::device::sink::snapshot::SnapshotSettings;
use crate::device::source::SourceSettings;
use crate::pipeline::track::TrackSettings;
use crate::util::setting::{SettingError, cut, in_range};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: cannot read it ({cause})")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("config{}: {message}", at(path))]
    Parse { path: PathBuf, message: String },
    #[error("config{}: {key}: {message}", at(path))]
    Invalid { path: PathBuf, key: String, message: String },
}

/// The key of `[source]` whose value its kind cannot take, when that is why the config does not parse.
/// `[source]` is one of several kinds (`kind = "synth"`, ...), and serde reads such a table whole before
/// it knows the kind, so its own error names no key: each key is left out in turn, and the one whose
/// absence makes the table parse (or only miss that key) is at fault.
fn source_key_at_fault(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let source = table.get("source")?.as_table()?;
    let parses = |t: &toml::Table| toml::Value::Table(t.clone()).try_into::<SourceSettings>();
    let first = parses(source).err()?;
    let first = first.message();
    if first.starts_with("unknown field") || first.starts_with("missing field") || first.contains("variant") {
        return None; // serde names the key or the kind in these already
    }
    source.keys().filter(|k| *k != "kind").find_map(|key| {
        let mut probe = source.clone();
        probe.remove(key);
        match parses(&probe) {
            Ok(_) => Some(key.clone()),
            Err(e) if e.message().contains(&format!("missing field `{key}`")) => Some(key.clone()),
            Err(_) => None,
        }
    })
}

fn at(path: &Path) -> String {
    if path.as_os_str().is_empty() { String::new() } else { format!(" {}", path.display()) }
}

/// The whole configuration. Every section is optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This camera's name: MQTT topics go under `poolwatch/<name>/`.
    pub name: String,
    /// The ONNX model; relative paths are relative to the config file. Default: the shipped one.
    pub model: Option<PathBuf>,
    /// Where frames come from (default: the synthetic pool camera).
    pub source: SourceSettings,
    pub pipeline: PipelineSettings,
    pub tracking: TrackSettings,
    /// Lane mapping (pool corners in the image, lane count, length). Without it, the lanes the source
    /// knows (the synthetic camera's), else none.
    pub lanes: Option<LaneSettings>,
    /// Lap timing in the lanes.
    pub timing: TimingSettings,
    /// The motionless-swimmer alarm.
    pub alarm: AlarmSettings,
    /// Zones in which staff may switch the alarm off for a while (`[zones.NAME]`).
    pub zones: std::collections::BTreeMap<String, crate::device::zones::ZoneSettings>,
    /// Where the preview's set-up page saves the lanes and zones drawn on it (relative to this file);
    /// read after this file, its `[lanes]` and `[zones]` replace these. Without it the page only shows.
    pub setup_file: Option<PathBuf>,
    pub stdout: StdoutSettings,
    pub serial: Option<SerialSettings>,
    pub mqtt: Option<MqttSettings>,
    pub snapshots: Option<SnapshotSettings>,
    pub http: Option<HttpSettings>,
    /// The pool mask; without it, the mask the model was calibrated with (or the whole frame).
    pub pool: Option<PoolSettings>,
    /// Replaces single heatmap settings the model was calibrated with.
    pub heatmap: HeatmapOverrides,
    pub boxes: BoxSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "pool".into(),
            model: None,
            source: SourceSettings::default(),
            pipeline: PipelineSettings::default(),
            tracking: TrackSettings::default(),
            lanes: None,
            timing: TimingSettings::default(),
            alarm: AlarmSettings::default(),
            zones: Default::default(),
            setup_file: None,
            stdout: StdoutSettings::default(),
            serial: None,
            mqtt: None,
            snapshots: None,
            http: None,
            pool: None,
            heatmap: HeatmapOverrides::default(),
            boxes: BoxSettings::default(),
        }
    }
}

/// How frames move through the daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSettings {
    /// Process one frame in N (1 = every frame).
    pub every_nth: u32,
    /// Frames waiting for inference; when full the oldest is dropped, so results stay fresh.
    pub queue: usize,
    /// Detection threads: each takes the next frame and runs it through a model state of its own
    /// (the model is loaded once), results keep the frames' order. More threads, more frames a second
    /// on a board with spare cores; a frame's latency stays one core's.
    pub threads: usize,
    /// The largest frame taken, in pixels; larger ones are refused (counted as bad frames) before
    /// they are decoded. The default keeps the daemon within the systemd unit's `MemoryMax`.
    pub max_pixels: u64,
    /// How many of the model file's networks run (`poolwatch-train train --models 2` writes two, whose
    /// heatmaps are averaged): 1 runs the first alone, one inference a frame instead of two, on a board
    /// too slow for both. Default: all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<usize>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings { every_nth: 1, queue: 1, threads: 1, max_pixels: crate::media::images::DEFAULT_MAX_PIXELS, networks: None }
    }
}

impl PipelineSettings {
    /// Every key in its range (keys as the `[pipeline]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        in_range("every_nth", self.every_nth, 1..=1000)?;
        in_range("queue", self.queue, 1..=64)?;
        in_range("threads", self.threads, 1..=64)?;
        if let Some(n) = self.networks {
            in_range("networks", n, 1..=crate::pipeline::model::contract::MAX_NETWORKS)?;
        }
        in_range("max_pixels", self.max_pixels, 256..=64 * 1024 * 1024)
    }
}

/// JSON lines on standard output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StdoutSettings {
    pub enabled: bool,
}

impl Default for StdoutSettings {
    fn default() -> Self {
        StdoutSettings { enabled: true }
    }
}

impl Config {
    /// The detector's settings: the pool mask, the heatmap and box sections, and the lanes.
    pub fn detector(&self) -> DetectorSettings {
        DetectorSettings { pool: self.pool.clone(), heatmap: self.heatmap.clone(), boxes: self.boxes.clone(), lanes: self.lanes.clone() }
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read { path: path.to_path_buf(), cause })?;
        let mut cfg = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.to_path_buf(), message },
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid { path: path.to_path_buf(), key, message },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.source.rebase(base);
        if let Some(s) = &mut cfg.snapshots
            && s.dir.is_relative()
        {
            s.dir = base.join(&s.dir);
        }
        if let Some(m) = &cfg.model
            && m.is_relative()
        {
            cfg.model = Some(base.join(m));
        }
        if let Some(pool) = &mut cfg.pool
            && let MaskSpec::Image(p) = &pool.mask
            && p.is_relative()
        {
            pool.mask = MaskSpec::Image(base.join(p));
        }
        if let Some(f) = &cfg.setup_file
            && f.is_relative()
        {
            cfg.setup_file = Some(base.join(f));
        }
        // The set-up page's lanes and zones replace the config's.
        if let Some(f) = cfg.setup_file.clone() {
            let invalid = |message: String| ConfigError::Invalid { path: path.to_path_buf(), key: "setup_file".into(), message: cut(&message, 300) };
            if let Some(setup) = crate::device::setup::Setup::load(&f).map_err(|e| invalid(e.to_string()))? {
                if setup.lanes.is_some() {
                    cfg.lanes = setup.lanes;
                }
                if let Some(zones) = setup.zones {
                    cfg.zones = zones;
                }
            }
        }
        Ok(cfg)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            if let Some(key) = source_key_at_fault(text) {
                return ConfigError::Invalid { path: PathBuf::new(), key: format!("source.{}", cut(&key, 64)), message: cut(e.message(), 300) };
            }
            ConfigError::Parse {
                path: PathBuf::new(),
                // toml quotes the offending line: a huge value must not flood the log.
                message: cut(&e.to_string().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" "), 300),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every section checked by its own type; the error names the key in full (`boxes.min_area`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map_err(|SettingError { key, message }| ConfigError::Invalid { path: PathBuf::new(), key: cut(&key, 100), message: cut(&message, 300) })
    }

    fn check(&self) -> Result<(), SettingError> {
        fn section<T>(name: &str, s: Option<&T>, check: impl Fn(&T) -> Result<(), SettingError>) -> Result<(), SettingError> {
            s.map_or(Ok(()), check).map_err(|e| e.in_section(name))
        }
        section("boxes", Some(&self.boxes), BoxSettings::validate)?;
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(SettingError::new("name", format!("{:?} must be 1-64 letters, digits, '-', '_' or '.'", cut(&self.name, 64))));
        }
        section("source", Some(&self.source), SourceSettings::validate)?;
        section("pipeline", Some(&self.pipeline), PipelineSettings::validate)?;
        section("tracking", Some(&self.tracking), TrackSettings::validate)?;
        section("lanes", self.lanes.as_ref(), LaneSettings::validate)?;
        section("timing", Some(&self.timing), TimingSettings::validate)?;
        section("alarm", Some(&self.alarm), AlarmSettings::validate)?;
        for (name, zone) in &self.zones {
            if !crate::device::zones::valid_name(name) {
                return Err(SettingError::new(format!("zones.{}", cut(name, 32)), "a zone's name is 1-32 letters, digits, '-' or '_' (it goes into MQTT topics and URLs)"));
            }
            section(&format!("zones.{name}"), Some(zone), crate::device::zones::ZoneSettings::validate)?;
        }
        section("serial", self.serial.as_ref(), SerialSettings::validate)?;
        section("mqtt", self.mqtt.as_ref(), MqttSettings::validate)?;
        section("snapshots", self.snapshots.as_ref(), SnapshotSettings::validate)?;
        section("http", self.http.as_ref(), HttpSettings::validate)?;
        section("heatmap", Some(&self.heatmap), HeatmapOverrides::validate)?;
        section("pool", self.pool.as_ref(), PoolSettings::validate)?;
        // A source that makes frames of a set size must make ones the pipeline takes.
        if let Some((w, h)) = self.source.frame_size()
            && w as u64 * h as u64 > self.pipeline.max_pixels
        {
            return Err(SettingError::new("source.width", format!("{w}x{h} frames are larger than pipeline.max_pixels ({})", self.pipeline.max_pixels)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::boxes::{Threshold, ThresholdMode};

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn full_config_parses() {
        let c = Config::parse(
            r#"
            model = "m.onnx"
            [pool]
            mask = { polygon = [[0, 0], [100, 0], [100, 50]] }
            [heatmap]
            exponent = 2.0
            blur_sigma = 1.0
            standardize = false
            [boxes]
            threshold = 0.25
            min_area = 0.001
            "#,
        )
        .unwrap();
        assert_eq!(c.pool.unwrap().mask, MaskSpec::Polygon(vec![[0.0, 0.0], [100.0, 0.0], [100.0, 50.0]]));
        assert_eq!(c.boxes.threshold, Threshold::Fixed(0.25));
        assert_eq!(c.heatmap.exponent, Some(2.0));
        assert_eq!(c.heatmap.brightness_weight, None);
        let c = Config::parse("[boxes]\nthreshold = \"adaptive\"\n[pool]\nmask = \"auto\"").unwrap();
        assert_eq!(c.boxes.threshold, Threshold::Named(ThresholdMode::Adaptive));
        assert_eq!(c.pool.unwrap().mask, MaskSpec::Auto);
        let c = Config::parse("[boxes]\nmin_area = \"auto\"").unwrap();
        assert_eq!(c.boxes.min_area, crate::pipeline::boxes::MinArea::Named(crate::pipeline::boxes::MinAreaMode::Auto));
        assert_eq!(Config::default().boxes.min_area, c.boxes.min_area);
        let c = Config::parse("[boxes]\nmin_area = 0.003").unwrap();
        assert_eq!(c.boxes.min_area, crate::pipeline::boxes::MinArea::Fraction(0.003));
        assert!(Config::parse("[boxes]\nmin_area = \"big\"").unwrap_err().to_string().contains("min_area"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[boxes]\nmin_aera = 3").unwrap_err().to_string();
        assert!(e.contains("min_aera"), "{e}");
        let e = Config::parse("[boxes]\nmin_area = 3.0").unwrap_err().to_string();
        assert!(e.contains("boxes") && e.contains("min_area"), "{e}");
        let e = Config::parse("[heatmap]\nexponent = -1.0").unwrap_err().to_string();
        assert!(e.contains("heatmap.exponent"), "{e}");
        // [source] is a table of one of several kinds: a wrong type there names its key too.
        for (text, key) in [
            ("[source]\nkind = \"synth\"\nfps = \"fast\"", "source.fps"),
            ("[source]\nkind = \"dir\"\npath = 3", "source.path"),
            ("[source]\nkind = \"stdin\"\nformat = \"mjpeg\"\nwidth = -5", "source.width"),
            ("[source]\nkind = \"camera\"\ndevice = \"/dev/video0\"\ntimeout_ms = true", "source.timeout_ms"),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(&format!("{key}: ")) && e.contains("invalid"), "{text}: {e}");
        }
        let e = Config::parse("[source]\nkind = \"synth\"\nfsp = 3").unwrap_err().to_string();
        assert!(e.contains("unknown field `fsp`"), "{e}");
        let e = Config::parse("[heatmap]\nbrightness_weight = -1.0").unwrap_err().to_string();
        assert!(e.contains("heatmap.brightness_weight"), "{e}");
        let e = Config::parse("[heatmap]\nbrightnes_weight = 0.5").unwrap_err().to_string();
        assert!(e.contains("brightnes_weight"), "{e}");
        let e = Config::parse("[pool]\nmask = { polygon = [[0, 0]] }").unwrap_err().to_string();
        assert!(e.contains("pool.mask.polygon"), "{e}");
        let e = Config::parse("[boxes]\nthreshold = \"sometimes\"").unwrap_err().to_string();
        assert!(e.contains("threshold"), "{e}");
        for n in [0, 5] {
            let e = Config::parse(&format!("[pipeline]\nnetworks = {n}")).unwrap_err().to_string();
            assert!(e.contains("pipeline.networks"), "{e}");
        }
        assert_eq!(Config::parse("[pipeline]\nnetworks = 1").unwrap().pipeline.networks, Some(1));
    }

    #[test]
    fn daemon_sections_parse_and_errors_name_their_keys() {
        let c = Config::parse(
            r#"
            name = "main-pool"
            [source]
            kind = "dir"
            path = ["frames"]
            fps = 10.0
            [pipeline]
            every_nth = 2
            [tracking]
            min_hits = 4
            [lanes]
            corners = [[40, 460], [600, 460], [440, 60], [200, 60]]
            count = 8
            length_m = 50.0
            [serial]
            port = "/dev/ttyUSB0"
            baud = 9600
            parity = "even"
            [mqtt]
            host = "broker.local"
            username = "pool"
            password = "secret"
            [snapshots]
            dir = "snaps"
            [http]
            listen = "0.0.0.0:8080"
            "#,
        )
        .unwrap();
        assert_eq!(c.name, "main-pool");
        assert_eq!(c.pipeline.every_nth, 2);
        assert_eq!(c.tracking.min_hits, 4);
        assert_eq!(c.lanes.unwrap().count, 8);
        assert_eq!(c.serial.unwrap().parity, crate::device::sink::serial::Parity::Even);
        assert_eq!(c.mqtt.unwrap().port, 1883);
        for (text, key) in [
            ("name = \"a b\"", "name"),
            ("[pipeline]\nevery_nth = 0", "pipeline.every_nth"),
            ("[serial]\nbaud = 9600", "serial.port"),
            ("[serial]\nport = \"/dev/x\"\nstop_bits = 3", "serial.stop_bits"),
            ("[mqtt]\nport = 0", "mqtt.port"),
            ("[http]\nlisten = \"localhost\"", "http.listen"),
            ("[lanes]\ncorners = [[0, 0], [1, 0], [1, 1], [0, 1]]\ncount = 0\nlength_m = 25.0", "lanes.count"),
            ("[source]\nkind = \"synth\"\nswimmers = \"x\"", "source.swimmers"),
            ("[tracking]\niou = 3.0", "tracking.iou"),
            ("[snapshots]\nkeep = 0", "snapshots.keep"),
            ("[mqtt]\nhots = \"x\"", "hots"),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, "model = \"m.onnx\"\n[pool]\nmask = { image = \"mask.png\" }\n").unwrap();
        let c = Config::load(&p).unwrap();
        assert_eq!(c.model.unwrap(), d.path().join("m.onnx"));
        assert_eq!(c.pool.unwrap().mask, MaskSpec::Image(d.path().join("mask.png")));
        assert!(Config::load(&d.path().join("missing.toml")).unwrap_err().to_string().contains("cannot read"));
    }
}
