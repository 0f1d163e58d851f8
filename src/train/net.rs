//! The autoencoder in tch: parameters named as the ONNX writer names them, a forward pass that
//! mirrors the exported graph op for op, and AdamW whose state can be saved and restored.

use crate::pipeline::model::arch::{Activation, Arch, Layer, LayerKind};
use crate::train::onnx::{WeightTensor, Weights, random_weights};
use tch::{Device, Kind, Tensor};

/// The network's parameters, in layer order.
pub struct Net {
    pub arch: Arch,
    layers: Vec<Layer>,
    pub params: Vec<(String, Tensor)>,
    pub dropout: f64,
}

fn to_tensor(t: &WeightTensor, device: Device) -> Tensor {
    let shape: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(&t.data).reshape(&shape).to_device(device).set_requires_grad(true)
}

impl Net {
    /// Fresh weights, deterministic for `seed`.
    pub fn new(arch: &Arch, device: Device, seed: u64, dropout: f64) -> Net {
        Net::from_weights(arch, &random_weights(arch, seed), device, dropout)
    }

    pub fn from_weights(arch: &Arch, weights: &Weights, device: Device, dropout: f64) -> Net {
        let layers = arch.layers();
        let mut params = Vec::new();
        for l in &layers {
            for name in [l.weight_name(), l.bias_name()] {
                params.push((name.clone(), to_tensor(&weights[&name], device)));
            }
        }
        Net { arch: arch.clone(), layers, params, dropout }
    }

    fn param(&self, name: &str) -> &Tensor {
        &self.params.iter().find(|(n, _)| n == name).expect("every layer's parameters exist").1
    }

    /// Reconstructs a batch `[B,3,H,W]`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = x.shallow_clone();
        let n = self.layers.len();
        for (i, l) in self.layers.iter().enumerate() {
            let (w, b) = (self.param(&l.weight_name()), self.param(&l.bias_name()));
            let p = (l.kernel / 2) as i64;
            h = match l.kind {
                LayerKind::Down => h.conv2d(w, Some(b), [2, 2], [p, p], [1, 1], 1),
                LayerKind::UpResize => {
                    let s = h.size();
                    h.upsample_nearest2d([s[2] * 2, s[3] * 2], 2.0, 2.0).conv2d(w, Some(b), [1, 1], [p, p], [1, 1], 1)
                }
                LayerKind::UpTranspose => {
                    let p = ((l.kernel - 1) / 2) as i64;
                    h.conv_transpose2d(w, Some(b), [2, 2], [p, p], [1, 1], 1, [1, 1])
                }
            };
            h = match l.activation {
                Activation::Relu => h.relu(),
                Activation::Sigmoid => h.sigmoid(),
            };
            if train && self.dropout > 0.0 && i + 1 < n {
                h = h.dropout(self.dropout, true);
            }
        }
        h
    }

    /// The weights as the ONNX writer takes them.
    pub fn weights(&self) -> Weights {
        let mut w = Weights::new();
        for (name, t) in &self.params {
            let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            let data = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap_or_default();
            w.insert(name.clone(), WeightTensor { shape, data });
        }
        w
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }
}

/// AdamW (decoupled weight decay) with its moment estimates kept as plain tensors, so a checkpoint
/// restores exactly the optimiser state.
pub struct Adam {
    pub lr: f64,
    pub weight_decay: f64,
    pub step: i64,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

impl Adam {
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    pub fn new(net: &Net, lr: f64, weight_decay: f64) -> Adam {
        let zeros = || net.params.iter().map(|(_, p)| p.zeros_like().detach()).collect::<Vec<_>>();
        Adam { lr, weight_decay, step: 0, m: zeros(), v: zeros() }
    }

    pub fn step(&mut self, net: &mut Net) {
        self.step += 1;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - Self::B1.powi(t), 1.0 - Self::B2.powi(t));
        tch::no_grad(|| {
            for (i, (_, p)) in net.params.iter_mut().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = self.m[i].g_mul_scalar_(Self::B1).g_add_(&(&g * (1.0 - Self::B1)));
                let _ = self.v[i].g_mul_scalar_(Self::B2).g_add_(&(&g * &g * (1.0 - Self::B2)));
                let update = (&self.m[i] / c1) / ((&self.v[i] / c2).sqrt() + Self::EPS) + &*p * self.weight_decay;
                let _ = p.g_sub_(&(update * self.lr));
            }
        });
    }
}
