//! The device: the daemon that runs the pipeline on a live source and fans its results out.
//!
//! [`config`] (the TOML file, composing the pipeline's settings with the device's own) ->
//! [`source`]s -> [`queue`] -> [`workers`] (detection threads) -> [`daemon`] (tracking, the run loop,
//! reload, systemd) -> [`report`] -> [`sink`]s (stdout, serial, MQTT, snapshots, the HTTP preview).

pub mod backoff;
pub mod config;
pub mod daemon;
pub mod preflight;
pub mod queue;
pub mod record;
pub mod setup;
pub mod signals;
pub mod report;
pub mod sink;
pub mod source;
pub mod throttle;
pub mod workers;
pub mod zones;
