//! A model file described for people and scripts: what `poolwatch info` prints.

use crate::pipeline::model::infer::read_proto;
use crate::pipeline::model::{Autoencoder, Calibration, ModelError, ModelMeta};
use std::path::Path;

/// The model at `path` as JSON: file, size, input, quantisation, architecture and its cost,
/// pre-processing, calibration summary and training summary. It is also loaded through tract, which
/// proves the device can run it.
pub fn describe(path: &Path) -> Result<serde_json::Value, ModelError> {
    let proto = read_proto(path)?;
    let meta = ModelMeta::from_proto(path, &proto)?;
    Autoencoder::from_proto(path, &proto)?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let cal = meta.calibration.as_ref().map(summary);
    let arch = meta.arch.as_ref().map(|a| {
        serde_json::json!({"name": a.name, "channels": a.channels, "kernels": a.kernels, "upsample": a.upsample,
            "macs_per_frame": a.macs(meta.width, meta.height)})
    });
    // The networks after the first, each with its calibration's summary.
    let members: Vec<_> = meta
        .members
        .iter()
        .map(|m| serde_json::json!({"output": m.output, "calibration": summary(&m.calibration), "training": m.training}))
        .collect();
    Ok(serde_json::json!({
        "file": path.display().to_string(), "bytes": size, "input": format!("{}x{}", meta.width, meta.height),
        "quantization": meta.quantization, "arch": arch, "preprocess": meta.preprocess, "calibration": cal,
        "training": meta.training, "networks": meta.networks(), "members": members,
    }))
}

/// A calibration without its per-pixel maps.
fn summary(c: &Calibration) -> serde_json::Value {
    serde_json::json!({"frames": c.frames, "quantile": c.quantile, "threshold": c.threshold,
        "raw_threshold": c.raw_threshold, "heatmap": c.heatmap})
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_model_describes_itself() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/poolwatch.onnx");
        let v = super::describe(&path).unwrap();
        assert_eq!(v["input"], "256x192");
        assert!(v["calibration"]["threshold"].as_f64().is_some_and(|t| t > 0.0), "{v}");
    }
}
