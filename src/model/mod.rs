//! The autoencoder: its architecture, the ONNX contract every model file follows, the writer that
//! produces such files from weights, and inference through tract.

pub mod arch;
pub mod contract;
pub mod infer;
pub mod onnx;
pub mod quant;
pub mod subpixel;

pub use arch::{Arch, Upsample};
pub use contract::{Calibration, ModelError, ModelMeta, Preprocess};
pub use infer::Autoencoder;
pub use onnx::{Weights, write_model};
