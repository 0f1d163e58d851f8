//! The trainer's side: everything that makes or changes a model file, and nothing the device runs.
//! Behind feature `export` (the `poolwatch-train` binary and the tests turn it on; a board's
//! `poolwatch` never compiles it): calibration on empty frames, datasets, augmentation, inpainting, footage without an empty pool
//! (and its self-training rounds),
//! the ONNX writer (with its sub-pixel form) and the int8 quantiser. Behind feature `train` as well,
//! libtorch through tch: the autoencoder as tensors, the training loop, its report and int8 export.

pub mod augment;
pub mod calibrate;
pub mod dataset;
pub mod footage;
pub mod inpaint;
pub mod networks;
pub mod probe;
pub mod onnx;
pub mod quant;
pub mod selftrain;
pub mod subpixel;
pub mod weights;

#[cfg(feature = "train")]
pub mod error;
#[cfg(feature = "train")]
pub mod int8;
#[cfg(feature = "train")]
pub mod net;
#[cfg(feature = "train")]
pub mod report;
#[cfg(feature = "train")]
pub mod run;

#[cfg(feature = "train")]
pub use error::TrainError;
#[cfg(feature = "train")]
pub use report::TrainSummary;
#[cfg(feature = "train")]
pub use run::{DeviceChoice, LrSchedule, NonPoolTarget, TrainSettings, train};
