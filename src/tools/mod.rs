//! Offline work over the pipeline and the device: accuracy ([`eval`]), stage timings ([`bench`]),
//! charts ([`chart`]), synthetic datasets ([`dataset`]) and model descriptions ([`info`]).

pub mod bench;
pub mod chart;
pub mod dataset;
pub mod eval;
pub mod info;
pub mod timing;
