//! poolwatch: swimmer detection for poolside cameras.
//!
//! A convolutional autoencoder trained only on frames of the empty pool reconstructs water, lanes and
//! reflections; what it cannot reconstruct (a swimmer) shows up as reconstruction error. The crate is
//! built in wings (ARCHITECTURE.md has the map and the rules), each importing only those below it:
//!
//! - [`util`]: small helpers with no knowledge of pools (random numbers, statistics, settings checks).
//! - [`pipeline`]: the detector, one frame at a time: [`pipeline::frame::Frame`] -> pre-processing ->
//!   model -> heatmap -> boxes -> tracks -> lanes. Knows nothing of config files, outputs or training.
//! - [`media`]: image files and annotation files on disk.
//! - [`synth`]: the synthetic pool camera (the demo's default source and the tests' ground truth).
//! - [`device`]: the daemon: the TOML config, frame sources, detection workers, reports, sinks
//!   (stdout, serial, MQTT, snapshots, the HTTP preview) and the run loop.
//! - [`train`] (feature `export`): what only the trainer and the tests need: calibration, datasets,
//!   augmentation, inpainting, the ONNX writer and the quantiser; with feature `train`, libtorch.
//! - [`tools`]: offline work over the others: evaluation, benchmarks, charts, synthetic datasets,
//!   model information.

pub mod util;
pub mod pipeline;
pub mod media;
pub mod synth;
pub mod device;
#[cfg(feature = "export")]
pub mod train;
pub mod tools;

pub use pipeline::boxes::BBox;
pub use pipeline::detect::{Detection, Detector};
pub use pipeline::frame::Frame;
