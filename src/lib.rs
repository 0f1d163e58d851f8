//! poolwatch: swimmer detection for poolside cameras.
//!
//! A convolutional autoencoder trained only on frames of the empty pool reconstructs water, lanes and
//! reflections; what it cannot reconstruct (a swimmer) shows up as reconstruction error. The library is the
//! pipeline, one module per stage, in the order the data flows:
//!
//! [`frame::Frame`] -> [`preprocess`] (model input) -> [`model`] (reconstruction) -> [`heatmap`] ->
//! [`boxes`] (with [`morph`]) -> [`track`] (+ [`lanes`]) -> [`report`] -> [`sink`]s (stdout, serial, MQTT, snapshots) and
//! the [`http`] preview.
//!
//! [`detect::Detector`] ties the stages together for one frame at a time; [`daemon`] runs it over a
//! [`source`] with capture, detection ([`workers`], one thread or more) and outputs on their own
//! threads ([`queue`]). Around the pipeline: [`synth`] (the synthetic pool camera and ground truth),
//! [`annotations`], [`calibrate`], [`eval`] (accuracy metrics), [`bench`] (stage timings), [`chart`];
//! for training, [`dataset`], [`augment`], [`inpaint`] and, with feature `train`, `train` (libtorch).

pub mod annotations;
pub mod augment;
pub mod bench;
pub mod boxes;
pub mod calibrate;
pub mod chart;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod detect;
pub mod eval;
pub mod frame;
pub mod geometry;
pub mod heatmap;
pub mod http;
pub mod inpaint;
pub mod lanes;
pub mod model;
pub mod morph;
pub mod overlay;
pub mod pool;
pub mod preprocess;
pub mod queue;
pub mod report;
pub mod simd;
pub mod sink;
pub mod source;
pub mod synth;
pub mod track;
pub mod workers;
#[cfg(feature = "train")]
pub mod train;

pub use boxes::BBox;
pub use detect::{Detection, Detector};
pub use frame::Frame;
