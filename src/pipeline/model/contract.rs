//! The model contract: what every poolwatch ONNX file holds and how it describes itself.
//!
//! Input `image`, f32 `[1,3,H,W]`, RGB in [0,1]; output `reconstruction` of the same shape. The file's
//! `metadata_props` carry the input size, the architecture, the pre-processing it was trained with, a
//! training summary and the calibration (per-pixel error statistics of empty frames and the threshold),
//! so one file is all a device needs.

use super::arch::Arch;
use crate::pipeline::heatmap::{EmptyPoolStats, HeatmapSettings};
use crate::pipeline::pool::PoolSettings;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tract_onnx::pb;

pub const INPUT_NAME: &str = "image";
pub const OUTPUT_NAME: &str = "reconstruction";
pub const CONTRACT_VERSION: &str = "1";

const KEY_CONTRACT: &str = "poolwatch.contract";
const KEY_SIZE: &str = "poolwatch.size";
const KEY_ARCH: &str = "poolwatch.arch";
const KEY_PREPROCESS: &str = "poolwatch.preprocess";
const KEY_TRAINING: &str = "poolwatch.training";
const KEY_CALIBRATION: &str = "poolwatch.calibration";
const KEY_QUANT: &str = "poolwatch.quantization";
const KEY_MEMBERS: &str = "poolwatch.members";
/// The most networks one file may hold (the first and its members).
pub const MAX_NETWORKS: usize = 4;
/// `sha256:<hex>` over everything else in the file (see [`integrity`]).
pub const KEY_INTEGRITY: &str = "poolwatch.integrity";

/// Everything that can be wrong with a model file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {path}: cannot read it ({cause}); check the path, or train one with poolwatch-train")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("model {path}: not an ONNX model ({reason})")]
    NotOnnx { path: PathBuf, reason: String },
    #[error("model {path}: does not follow the poolwatch contract: {reason}")]
    Contract { path: PathBuf, reason: String },
    #[error("model {path}: tract cannot run it: {reason}")]
    Tract { path: PathBuf, reason: String },
    #[error("model {path}: cannot write it ({cause})")]
    Write { path: PathBuf, cause: std::io::Error },
    #[error("inference failed: {0}")]
    Run(String),
}

/// Range compression and bright-spot suppression, applied before the model (the seed's test-time
/// normalisation). A model is trained with one setting and records it, so the device applies the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Map [0,1] to [lo,hi].
    #[serde(default)]
    pub range: Option<[f32; 2]>,
    /// Pixels whose luma is above this (0..1) are replaced by the frame's mean colour.
    #[serde(default)]
    pub bright_clip: Option<f32>,
}

/// Per-pixel statistics of the heatmap on held-out empty frames, and the threshold derived from them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Size of the maps (the model's input size).
    pub width: u32,
    pub height: u32,
    /// Mean of the raw per-pixel error on empty frames, row-major.
    #[serde(with = "b64_f32")]
    pub mean: Vec<f32>,
    /// Spread (standard deviation) of the raw per-pixel error on empty frames.
    #[serde(with = "b64_f32")]
    pub std: Vec<f32>,
    /// The heatmap settings the statistics and thresholds were measured with.
    pub heatmap: HeatmapSettings,
    /// Threshold on the standardised score (used when the heatmap is standardised).
    pub threshold: f32,
    /// Threshold on the raw (not standardised) score.
    pub raw_threshold: f32,
    /// The quantile of empty-frame scores the thresholds sit at.
    pub quantile: f32,
    /// How many empty frames were measured.
    pub frames: usize,
    /// The pool mask the frames were measured with; the device uses it unless its config says
    /// otherwise. Absent for mask images (a file on the training machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSettings>,
    /// The camera's noise grain: over the empty frames, the median of the largest blob (a fraction of
    /// the frame) that the box stage's default morphology leaves when the standardised heatmap is cut at
    /// half the threshold. Waves and highlights seen close up make big blobs; `[boxes] min_area = "auto"`
    /// sizes the smallest box from it. Absent in models calibrated before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_area: Option<f32>,
}

impl Calibration {
    /// The empty frames' per-pixel statistics, as the heatmap standardises by them.
    pub fn stats(&self) -> EmptyPoolStats<'_> {
        EmptyPoolStats { mean: &self.mean, std: &self.std }
    }
}

/// Another network in the same file beside the first (`poolwatch-train train --models 2`,
/// `poolwatch-train merge`): it reads the same input, writes its own output of the same shape, and has
/// its own calibration. The device builds each network's standardised heatmap with that network's own
/// calibration and averages them: where the networks agree (a body) the score stays, where only one of
/// them sees something (its own patch of surface) it halves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Its output's name in the graph (`reconstruction.2`, ...).
    pub output: String,
    pub calibration: Calibration,
    /// Its training summary.
    #[serde(default)]
    pub training: serde_json::Value,
}

/// The output name of the file's `k`-th network (0 is the first, [`OUTPUT_NAME`]).
pub fn output_name(k: usize) -> String {
    if k == 0 { OUTPUT_NAME.to_string() } else { format!("{OUTPUT_NAME}.{}", k + 1) }
}

/// A model's self-description, read from and written to ONNX `metadata_props`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    pub width: u32,
    pub height: u32,
    pub arch: Option<Arch>,
    pub preprocess: Preprocess,
    /// Free-form training summary (epochs, losses, data, time).
    pub training: serde_json::Value,
    pub calibration: Option<Calibration>,
    /// `float` or `int8`.
    pub quantization: String,
    /// The networks after the first, each with its own output and calibration (empty: one network).
    pub members: Vec<Member>,
}

impl ModelMeta {
    pub fn new(width: u32, height: u32, arch: Arch) -> ModelMeta {
        ModelMeta {
            width,
            height,
            arch: Some(arch),
            preprocess: Preprocess::default(),
            training: serde_json::Value::Null,
            calibration: None,
            quantization: "float".into(),
            members: Vec::new(),
        }
    }

    /// How many networks the file holds (the first and its members).
    pub fn networks(&self) -> usize {
        1 + self.members.len()
    }

    /// The output names of the networks, the first's first.
    pub fn outputs(&self) -> Vec<String> {
        std::iter::once(OUTPUT_NAME.to_string()).chain(self.members.iter().map(|m| m.output.clone())).collect()
    }

    /// The `metadata_props` entries for this description.
    pub fn to_props(&self) -> Vec<pb::StringStringEntryProto> {
        let mut props = vec![
            (KEY_CONTRACT, CONTRACT_VERSION.to_string()),
            (KEY_SIZE, format!("{}x{}", self.width, self.height)),
            (KEY_PREPROCESS, serde_json::to_string(&self.preprocess).unwrap_or_default()),
            (KEY_TRAINING, self.training.to_string()),
            (KEY_QUANT, self.quantization.clone()),
        ];
        if let Some(arch) = &self.arch {
            props.push((KEY_ARCH, serde_json::to_string(arch).unwrap_or_default()));
        }
        if let Some(cal) = &self.calibration {
            props.push((KEY_CALIBRATION, serde_json::to_string(cal).unwrap_or_default()));
        }
        if !self.members.is_empty() {
            props.push((KEY_MEMBERS, serde_json::to_string(&self.members).unwrap_or_default()));
        }
        props
            .into_iter()
            .map(|(k, v)| pb::StringStringEntryProto { key: k.to_string(), value: v })
            .collect()
    }

    /// Reads and checks the description of a decoded model.
    pub fn from_proto(path: &Path, proto: &pb::ModelProto) -> Result<ModelMeta, ModelError> {
        // Reasons quote the file's own text (a JSON key, a version): one bounded line.
        let bad = |reason: String| ModelError::Contract { path: path.to_path_buf(), reason: crate::util::setting::cut(&reason, 300) };
        let graph = proto.graph.as_ref().ok_or_else(|| bad("it has no graph".into()))?;
        let input = graph
            .input
            .iter()
            .find(|i| i.name == INPUT_NAME)
            .ok_or_else(|| bad(format!("no input named '{INPUT_NAME}'")))?;
        if !graph.output.iter().any(|o| o.name == OUTPUT_NAME) {
            return Err(bad(format!("no output named '{OUTPUT_NAME}'")));
        }
        let prop = |key: &str| proto.metadata_props.iter().find(|p| p.key == key).map(|p| p.value.as_str());
        if let Some(v) = prop(KEY_CONTRACT)
            && v != CONTRACT_VERSION
        {
            return Err(bad(format!("contract version {:?} is not one this poolwatch knows ({CONTRACT_VERSION})", crate::util::setting::cut(v, 16))));
        }
        check_input(input).map_err(bad)?;

        let dims = static_dims(input);
        let (width, height) = match prop(KEY_SIZE) {
            Some(s) => parse_size(s).map_err(|e| bad(format!("{KEY_SIZE}: {e}")))?,
            None => match dims.as_deref() {
                Some([1, 3, h, w]) if *h > 0 && *w > 0 => (*w as u32, *h as u32),
                _ => return Err(bad(format!("no {KEY_SIZE} metadata and no fixed [1,3,H,W] input shape"))),
            },
        };
        if let Some(d) = dims.as_deref()
            && d.len() == 4
            && d.iter().all(|&v| v > 0)
            && (d[0] != 1 || d[1] != 3 || d[2] as u32 != height || d[3] as u32 != width)
        {
            return Err(bad(format!("input shape {d:?} is not [1,3,{height},{width}]")));
        }
        let json = |key: &str| -> Result<Option<serde_json::Value>, ModelError> {
            prop(key)
                .map(|s| serde_json::from_str(s).map_err(|e| bad(format!("{key} is not valid JSON: {e}"))))
                .transpose()
        };
        let arch = json(KEY_ARCH)?
            .map(|v| serde_json::from_value::<Arch>(v).map_err(|e| bad(format!("{KEY_ARCH}: {e}"))))
            .transpose()?;
        let preprocess = json(KEY_PREPROCESS)?
            .map(|v| serde_json::from_value::<Preprocess>(v).map_err(|e| bad(format!("{KEY_PREPROCESS}: {e}"))))
            .transpose()?
            .unwrap_or_default();
        let calibration = json(KEY_CALIBRATION)?
            .map(|v| serde_json::from_value::<Calibration>(v).map_err(|e| bad(format!("{KEY_CALIBRATION}: {e}"))))
            .transpose()?;
        preprocess.check().map_err(|e| bad(format!("{KEY_PREPROCESS}: {e}")))?;
        let members = json(KEY_MEMBERS)?
            .map(|v| serde_json::from_value::<Vec<Member>>(v).map_err(|e| bad(format!("{KEY_MEMBERS}: {e}"))))
            .transpose()?
            .unwrap_or_default();
        if !members.is_empty() && calibration.is_none() {
            return Err(bad(format!("{KEY_MEMBERS}: the first network has no calibration, and the networks' heatmaps can only be averaged calibrated")));
        }
        if members.len() + 1 > MAX_NETWORKS {
            return Err(bad(format!("{KEY_MEMBERS}: {} networks, at most {MAX_NETWORKS}", members.len() + 1)));
        }
        for (k, m) in members.iter().enumerate() {
            if m.output != output_name(k + 1) {
                return Err(bad(format!("{KEY_MEMBERS}: network {} must write '{}', not '{}'", k + 2, output_name(k + 1), crate::util::setting::cut(&m.output, 40))));
            }
            if !graph.output.iter().any(|o| o.name == m.output) {
                return Err(bad(format!("{KEY_MEMBERS}: no output named '{}'", m.output)));
            }
        }
        for (key, cal) in calibration.iter().map(|c| (KEY_CALIBRATION.to_string(), c)).chain(members.iter().enumerate().map(|(k, m)| (format!("{KEY_MEMBERS}[{k}]"), &m.calibration))) {
            cal.check().map_err(|e| bad(format!("{key}: {e}")))?;
            let n = (cal.width * cal.height) as usize;
            if cal.width != width || cal.height != height || cal.mean.len() != n || cal.std.len() != n {
                return Err(bad(format!(
                    "{key}: calibration maps are {}x{} ({} values) but the model is {width}x{height}",
                    cal.width,
                    cal.height,
                    cal.mean.len()
                )));
            }
        }
        match prop(KEY_INTEGRITY) {
            Some(v) if v != integrity(proto) => {
                return Err(bad(
                    "its integrity hash does not match its content: the file was changed or damaged after poolwatch-train wrote it; copy it again, or export it again".into(),
                ));
            }
            Some(_) => {}
            None => log::warn!(
                "model {}: no integrity hash (written by an older poolwatch-train), so damage to it cannot be detected; `poolwatch-train upgrade MODEL` adds one",
                path.display()
            ),
        }
        Ok(ModelMeta {
            width,
            height,
            arch,
            preprocess,
            training: json(KEY_TRAINING)?.unwrap_or(serde_json::Value::Null),
            calibration,
            quantization: prop(KEY_QUANT).unwrap_or("float").to_string(),
            members,
        })
    }
}

/// The hash a file's [`KEY_INTEGRITY`] entry holds: SHA-256 over the graph (structure and weights),
/// the IR and operator-set versions and every other metadata entry in file order. Flipped bytes in the
/// weights, which load and run, change it.
pub fn integrity(proto: &pb::ModelProto) -> String {
    use prost::Message;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"poolwatch-model-1\0");
    h.update(proto.ir_version.to_le_bytes());
    for o in &proto.opset_import {
        h.update(o.domain.as_bytes());
        h.update(b"\0");
        h.update(o.version.to_le_bytes());
    }
    for p in proto.metadata_props.iter().filter(|p| p.key != KEY_INTEGRITY) {
        for part in [&p.key, &p.value] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    if let Some(g) = &proto.graph {
        h.update(g.encode_to_vec());
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Writes (or renews) the file's integrity hash; the writer does it last, after every other change.
pub fn seal(proto: &mut pb::ModelProto) {
    proto.metadata_props.retain(|p| p.key != KEY_INTEGRITY);
    let value = integrity(proto);
    proto.metadata_props.push(pb::StringStringEntryProto { key: KEY_INTEGRITY.into(), value });
}

/// The input is one float image: `[1, 3, H, W]` with every dimension a number.
fn check_input(input: &pb::ValueInfoProto) -> Result<(), String> {
    let pb::type_proto::Value::TensorType(t) = input.r#type.as_ref().and_then(|t| t.value.as_ref()).ok_or("the input has no type")?;
    if t.elem_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(format!("the input's element type is {}, not float", t.elem_type));
    }
    match static_dims(input).as_deref() {
        Some([1, 3, h, w]) if *h > 0 && *w > 0 => Ok(()),
        Some(d) => Err(format!("the input's shape {d:?} is not [1, 3, H, W]")),
        None => Err("the input's shape is not fixed ([1, 3, H, W] with numbers)".into()),
    }
}

impl Preprocess {
    /// The values a model file may hold.
    pub fn check(&self) -> Result<(), String> {
        if let Some([lo, hi]) = self.range
            && !(0.0 <= lo && lo < hi && hi <= 1.0)
        {
            return Err(format!("range [{lo}, {hi}] must have 0 <= lo < hi <= 1"));
        }
        if let Some(c) = self.bright_clip
            && !(0.0..=1.0).contains(&c)
        {
            return Err(format!("bright_clip {c} must be in [0, 1]"));
        }
        Ok(())
    }
}

impl Calibration {
    /// The values a model file may hold: settings in the ranges a config accepts, thresholds and
    /// statistics positive and finite. A damaged file otherwise makes every frame a whole-frame box
    /// (a spread of 0 or NaN) or takes minutes a frame (a smoothing of 1e6).
    pub fn check(&self) -> Result<(), String> {
        use crate::pipeline::heatmap::{BLUR_SIGMA_RANGE, BRIGHTNESS_WEIGHT_RANGE};
        let h = &self.heatmap;
        if !BLUR_SIGMA_RANGE.contains(&h.blur_sigma) {
            return Err(format!("heatmap.blur_sigma {} must be in [{}, {}]", h.blur_sigma, BLUR_SIGMA_RANGE.start(), BLUR_SIGMA_RANGE.end()));
        }
        if !BRIGHTNESS_WEIGHT_RANGE.contains(&h.brightness_weight) {
            return Err(format!("heatmap.brightness_weight {} is out of range", h.brightness_weight));
        }
        if !(0.0..=1.0).contains(&h.white_weight) {
            return Err(format!("heatmap.white_weight {} must be in [0, 1]", h.white_weight));
        }
        let exponent_ok = h.exponent > 0.0 && h.exponent <= 8.0;
        if !exponent_ok || !(0.0..=1.0).contains(&h.adapt_rate) || !h.adapt_gate.is_finite() {
            return Err("heatmap.exponent, adapt_rate or adapt_gate is out of range".into());
        }
        for (name, v) in [("threshold", self.threshold), ("raw_threshold", self.raw_threshold)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} {v} must be a positive number"));
            }
        }
        if !(0.0..=1.0).contains(&self.quantile) || self.noise_area.is_some_and(|a| !(0.0..1.0).contains(&a)) {
            return Err("quantile or noise_area is out of range".into());
        }
        if let Some(i) = self.mean.iter().chain(&self.std).position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(format!("the per-pixel statistics hold a negative or non-finite value (at {i})"));
        }
        Ok(())
    }
}

/// The input's dimensions when they are all given as numbers.
fn static_dims(input: &pb::ValueInfoProto) -> Option<Vec<i64>> {
    let ty = input.r#type.as_ref()?.value.as_ref()?;
    let pb::type_proto::Value::TensorType(t) = ty;
    let shape = t.shape.as_ref()?;
    shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(pb::tensor_shape_proto::dimension::Value::DimValue(v)) => Some(*v),
            _ => None,
        })
        .collect()
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(|| format!("'{s}' is not WIDTHxHEIGHT"))?;
    let w: u32 = w.trim().parse().map_err(|_| format!("'{s}' is not WIDTHxHEIGHT"))?;
    let h: u32 = h.trim().parse().map_err(|_| format!("'{s}' is not WIDTHxHEIGHT"))?;
    if w == 0 || h == 0 || w > 8192 || h > 8192 {
        return Err(format!("size '{s}' is out of range (1..8192)"));
    }
    Ok((w, h))
}

/// Serialises a `Vec<f32>` as base64 of its little-endian bytes (compact in JSON metadata).
mod b64_f32 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom("float map length is not a multiple of 4 bytes"));
        }
        Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("320x240").unwrap(), (320, 240));
        assert!(parse_size("320").is_err());
        assert!(parse_size("0x5").is_err());
    }

    #[test]
    fn calibration_round_trips_through_json() {
        let cal = Calibration {
            width: 2,
            height: 1,
            mean: vec![0.5, -1.25],
            std: vec![1e-3, 7.0],
            heatmap: HeatmapSettings::default(),
            threshold: 4.0,
            raw_threshold: 0.1,
            quantile: 0.999,
            frames: 3,
            pool: Some(PoolSettings { mask: crate::pipeline::pool::MaskSpec::Auto, erode: 3 }),
            noise_area: Some(0.002),
        };
        let s = serde_json::to_string(&cal).unwrap();
        let back: Calibration = serde_json::from_str(&s).unwrap();
        assert_eq!(back, cal);
    }
}
