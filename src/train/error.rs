//! What can go wrong while training, exporting or quantising a model.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Device(String),
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("{0}")]
    Settings(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Model(#[from] crate::pipeline::model::ModelError),
    #[error(transparent)]
    Detect(#[from] crate::pipeline::detect::DetectError),
    #[error("export check failed: tract and libtorch differ by {0:.2e} (limit 1e-3)")]
    Mismatch(f32),
    #[error("{path}: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
}
