//! Helpers shared by the integration tests: models with chosen weights, an independent reference
//! forward pass, and the path of the built binary.
#![allow(dead_code)]

use poolwatch::pipeline::model::arch::{Activation, Arch, LayerKind};
use poolwatch::train::onnx::{WeightTensor, Weights};
use std::path::PathBuf;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_poolwatch"))
}

/// A command that runs the built binary; through `$POOLWATCH_TEST_RUNNER` when set (e.g.
/// `qemu-aarch64-static -L /` for a cross-built binary, as `cross/build.sh` sets it, since this machine
/// cannot exec foreign binaries directly).
pub fn poolwatch() -> std::process::Command {
    match std::env::var("POOLWATCH_TEST_RUNNER").ok().filter(|r| !r.trim().is_empty()) {
        Some(runner) => {
            let mut parts = runner.split_whitespace();
            let mut c = std::process::Command::new(parts.next().unwrap_or_default());
            c.args(parts).arg(bin());
            c
        }
        None => std::process::Command::new(bin()),
    }
}

/// How much slower than a real CPU the binary runs: `$POOLWATCH_TEST_SLOWDOWN` (e.g. 8 under qemu-user,
/// where the model takes most of a second a frame), 1 when unset. Deadlines that wait for the daemon's
/// frames scale with it; nothing else does.
pub fn slowdown() -> f64 {
    std::env::var("POOLWATCH_TEST_SLOWDOWN").ok().and_then(|v| v.trim().parse::<f64>().ok()).filter(|f| *f >= 1.0).unwrap_or(1.0)
}

/// `secs` seconds of a real CPU's time, scaled by [`slowdown`].
pub fn deadline(secs: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(secs * slowdown())
}

/// A [C,H,W] tensor.
#[derive(Clone, Debug)]
pub struct T {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub d: Vec<f32>,
}

impl T {
    fn at(&self, c: usize, y: isize, x: isize) -> f32 {
        if y < 0 || x < 0 || y as usize >= self.h || x as usize >= self.w {
            0.0
        } else {
            self.d[(c * self.h + y as usize) * self.w + x as usize]
        }
    }
}

fn conv(x: &T, w: &WeightTensor, b: &WeightTensor, stride: usize) -> T {
    let (o, k) = (w.shape[0], w.shape[2]);
    let p = (k / 2) as isize;
    let ho = (x.h + 2 * p as usize - k) / stride + 1;
    let wo = (x.w + 2 * p as usize - k) / stride + 1;
    let mut d = vec![0.0; o * ho * wo];
    for oc in 0..o {
        for yo in 0..ho {
            for xo in 0..wo {
                let mut s = b.data[oc];
                for ic in 0..x.c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let wv = w.data[((oc * x.c + ic) * k + ky) * k + kx];
                            s += wv * x.at(ic, (yo * stride) as isize + ky as isize - p, (xo * stride) as isize + kx as isize - p);
                        }
                    }
                }
                d[(oc * ho + yo) * wo + xo] = s;
            }
        }
    }
    T { c: o, h: ho, w: wo, d }
}

fn conv_transpose(x: &T, w: &WeightTensor, b: &WeightTensor) -> T {
    let (o, k) = (w.shape[1], w.shape[2]);
    let p = ((k - 1) / 2) as isize;
    let (ho, wo) = (x.h * 2, x.w * 2);
    let mut d = vec![0.0; o * ho * wo];
    for oc in 0..o {
        for v in &mut d[oc * ho * wo..(oc + 1) * ho * wo] {
            *v = b.data[oc];
        }
    }
    for ic in 0..x.c {
        for i in 0..x.h {
            for j in 0..x.w {
                let xv = x.d[(ic * x.h + i) * x.w + j];
                for oc in 0..o {
                    for ky in 0..k {
                        for kx in 0..k {
                            let y = (i * 2) as isize - p + ky as isize;
                            let xx = (j * 2) as isize - p + kx as isize;
                            if y >= 0 && xx >= 0 && (y as usize) < ho && (xx as usize) < wo {
                                d[(oc * ho + y as usize) * wo + xx as usize] += xv * w.data[((ic * o + oc) * k + ky) * k + kx];
                            }
                        }
                    }
                }
            }
        }
    }
    T { c: o, h: ho, w: wo, d }
}

fn upsample(x: &T) -> T {
    let (h, w) = (x.h * 2, x.w * 2);
    let mut d = vec![0.0; x.c * h * w];
    for c in 0..x.c {
        for y in 0..h {
            for xx in 0..w {
                d[(c * h + y) * w + xx] = x.d[(c * x.h + y / 2) * x.w + xx / 2];
            }
        }
    }
    T { c: x.c, h, w, d }
}

/// The autoencoder computed naively, layer by layer, straight from the architecture's definition.
pub fn reference_forward(arch: &Arch, weights: &Weights, input: T) -> T {
    let mut x = input;
    for l in arch.layers() {
        let (w, b) = (&weights[&l.weight_name()], &weights[&l.bias_name()]);
        x = match l.kind {
            LayerKind::Down => conv(&x, w, b, 2),
            LayerKind::UpResize => conv(&upsample(&x), w, b, 1),
            LayerKind::UpTranspose => conv_transpose(&x, w, b),
        };
        for v in &mut x.d {
            *v = match l.activation {
                Activation::Relu => v.max(0.0),
                Activation::Sigmoid => 1.0 / (1.0 + (-*v).exp()),
            };
        }
    }
    x
}

/// A blurring, identity-like autoencoder: each layer averages its neighbourhood channel by channel,
/// and the sigmoid output is linearised around 0.5, so the reconstruction is a blurred input.
/// Small, sharp things (swimmers) are what it cannot reconstruct.
pub fn blur_model(arch_name: &str) -> (Arch, Weights) {
    let arch = Arch::by_name(arch_name).unwrap();
    let mut w = Weights::new();
    for l in arch.layers() {
        let shape = l.weight_shape().to_vec();
        let k = l.kernel;
        let mut data = vec![0.0; shape.iter().product()];
        let last = l.activation == Activation::Sigmoid;
        let gain = if last { 4.0 } else { 1.0 };
        let transposed = l.kind == LayerKind::UpTranspose;
        // Transposed convolutions of stride 2 spread each input over 4x the area: compensate.
        let norm = if transposed { 4.0 / (k * k) as f32 } else { 1.0 / (k * k) as f32 };
        let idx = |i: usize, o: usize, j: usize| if transposed { (i * l.cout + o) * k * k + j } else { (o * l.cin + i) * k * k + j };
        for o in 0..l.cout {
            // Channel o carries colour o % 3 throughout when every width is a multiple of 3.
            let inputs: Vec<usize> = if l.cout >= l.cin { vec![o % l.cin] } else { (o..l.cin).step_by(l.cout).collect() };
            for &i in &inputs {
                for j in 0..k * k {
                    data[idx(i, o, j)] = gain * norm / inputs.len() as f32;
                }
            }
        }
        let bias = vec![if last { -2.0 } else { 0.0 }; l.cout];
        w.insert(l.weight_name(), WeightTensor { shape, data });
        w.insert(l.bias_name(), WeightTensor { shape: vec![l.cout], data: bias });
    }
    (arch, w)
}
