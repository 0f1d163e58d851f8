//! Small helpers that know nothing of pools: a deterministic random number generator ([`rng`]),
//! order statistics ([`stats`]), settings checks that name the key ([`setting`]) and lock recovery
//! ([`sync`]). Nothing here imports the rest of the crate.

pub mod rng;
pub mod setting;
pub mod stats;
pub mod sync;
