//! The TOML configuration: types, defaults and validation, with errors that name the key.

use crate::boxes::BoxSettings;
use crate::heatmap::HeatmapSettings;
use crate::pool::{MaskSpec, PoolSettings};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: cannot read it ({cause})")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: {key}: {message}")]
    Invalid { path: PathBuf, key: String, message: String },
}

/// The whole configuration. Every section is optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The ONNX model; relative paths are relative to the config file.
    pub model: Option<PathBuf>,
    /// The pool mask; without it, the mask the model was calibrated with (or the whole frame).
    pub pool: Option<PoolSettings>,
    /// Overrides the heatmap settings the model was calibrated with.
    pub heatmap: Option<HeatmapSettings>,
    pub boxes: BoxSettings,
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read { path: path.to_path_buf(), cause })?;
        let mut cfg = Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.to_path_buf(), message },
            ConfigError::Invalid { key, message, .. } => ConfigError::Invalid { path: path.to_path_buf(), key, message },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
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
        Ok(cfg)
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string().replace('\n', " ").split_whitespace().collect::<Vec<_>>().join(" "),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { path: PathBuf::new(), key: key.into(), message };
        self.boxes.validate().map_err(|m| invalid("boxes", m))?;
        if let Some(h) = &self.heatmap {
            if !(h.exponent > 0.0 && h.exponent <= 8.0) {
                return Err(invalid("heatmap.exponent", format!("{} must be in (0, 8]", h.exponent)));
            }
            if !(0.0..=20.0).contains(&h.blur_sigma) {
                return Err(invalid("heatmap.blur_sigma", format!("{} must be in [0, 20]", h.blur_sigma)));
            }
        }
        if let Some(PoolSettings { mask: MaskSpec::Polygon(p), .. }) = &self.pool
            && p.len() < 3
        {
            return Err(invalid("pool.mask.polygon", format!("needs at least 3 points, got {}", p.len())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::{Threshold, ThresholdMode};

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
        assert_eq!(c.heatmap.unwrap().exponent, 2.0);
        let c = Config::parse("[boxes]\nthreshold = \"adaptive\"\n[pool]\nmask = \"auto\"").unwrap();
        assert_eq!(c.boxes.threshold, Threshold::Named(ThresholdMode::Adaptive));
        assert_eq!(c.pool.unwrap().mask, MaskSpec::Auto);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[boxes]\nmin_aera = 3").unwrap_err().to_string();
        assert!(e.contains("min_aera"), "{e}");
        let e = Config::parse("[boxes]\nmin_area = 3.0").unwrap_err().to_string();
        assert!(e.contains("boxes") && e.contains("min_area"), "{e}");
        let e = Config::parse("[heatmap]\nexponent = -1.0").unwrap_err().to_string();
        assert!(e.contains("heatmap.exponent"), "{e}");
        let e = Config::parse("[pool]\nmask = { polygon = [[0, 0]] }").unwrap_err().to_string();
        assert!(e.contains("pool.mask.polygon"), "{e}");
        let e = Config::parse("[boxes]\nthreshold = \"sometimes\"").unwrap_err().to_string();
        assert!(e.contains("threshold"), "{e}");
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
