//! The network's parameters as plain arrays, between the trainer, the ONNX writer and its sub-pixel form.

use std::collections::BTreeMap;

/// A named weight tensor: shape and row-major values.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The network's parameters by name (`enc0.weight`, `enc0.bias`, ...), as the trainer names them.
pub type Weights = BTreeMap<String, WeightTensor>;
