//! The autoencoder family: a fully convolutional encoder of stride-2 convolutions with growing kernels and
//! widths, a symmetric decoder, ReLU between layers and a sigmoid output (the seed report's design).

use serde::{Deserialize, Serialize};

/// How the decoder doubles the resolution at each layer.
/// The kernel size of an upsampled convolution of kernel `k` (odd) in its sub-pixel form (a convolution
/// at low resolution to four times the channels, then depth-to-space), as the model files hold it.
pub fn subpixel_kernel(k: usize) -> usize {
    2 * (k / 2).div_ceil(2) + 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsample {
    /// Nearest-neighbour `Resize` x2 followed by a stride-1 convolution.
    Resize,
    /// A stride-2 `ConvTranspose` (the seed's decoder).
    ConvTranspose,
}

/// One autoencoder architecture. Encoder layer `i` is `Conv(kernels[i], stride 2) -> ReLU` to
/// `channels[i]` channels; decoder layer `j` mirrors encoder layer `n-1-j` back to its input width, and
/// the last one ends in a sigmoid with 3 channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    pub name: String,
    pub channels: Vec<usize>,
    pub kernels: Vec<usize>,
    pub upsample: Upsample,
}

/// One convolution of the network, as the writer and the trainer see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// Weight name prefix: `enc0`, ..., `dec0`, ...
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub kind: LayerKind,
    pub activation: Activation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Stride-2 convolution, padding kernel/2.
    Down,
    /// Upsample x2 then a stride-1 convolution, padding kernel/2.
    UpResize,
    /// Stride-2 transposed convolution, padding (k-1)/2, output padding 1.
    UpTranspose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Sigmoid,
}

impl Layer {
    /// The weight tensor's shape: `[cout, cin, k, k]`, or `[cin, cout, k, k]` for a transposed conv.
    pub fn weight_shape(&self) -> [usize; 4] {
        match self.kind {
            LayerKind::UpTranspose => [self.cin, self.cout, self.kernel, self.kernel],
            _ => [self.cout, self.cin, self.kernel, self.kernel],
        }
    }

    pub fn weight_name(&self) -> String {
        format!("{}.weight", self.name)
    }

    pub fn bias_name(&self) -> String {
        format!("{}.bias", self.name)
    }
}

impl Arch {
    /// The seed report's final model: 4+4 layers, kernels 3,5,7,9, transposed-convolution decoder.
    pub fn seed4() -> Arch {
        Arch {
            name: "seed4".into(),
            channels: vec![16, 32, 64, 128],
            kernels: vec![3, 5, 7, 9],
            upsample: Upsample::ConvTranspose,
        }
    }

    /// The seed's first model: 3+3 layers, kernels 3,5,9 (too little compressive, the report found).
    pub fn seed3() -> Arch {
        Arch {
            name: "seed3".into(),
            channels: vec![16, 32, 64],
            kernels: vec![3, 5, 9],
            upsample: Upsample::ConvTranspose,
        }
    }

    /// The default for the device: the seed's shape, narrower, with a resize-convolution decoder.
    pub fn fast() -> Arch {
        Arch {
            name: "fast".into(),
            channels: vec![8, 16, 32, 32],
            kernels: vec![3, 5, 5, 7],
            upsample: Upsample::Resize,
        }
    }

    /// A named architecture: `seed4`, `seed3`, `fast`, or a custom
    /// `CH,CH,...:K,K,...[:resize|convtranspose]` such as `16,32,64:3,5,7:resize`.
    pub fn by_name(name: &str) -> Result<Arch, String> {
        match name {
            "seed4" => return Ok(Arch::seed4()),
            "seed3" => return Ok(Arch::seed3()),
            "fast" => return Ok(Arch::fast()),
            _ => {}
        }
        let parts: Vec<&str> = name.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(format!(
                "unknown architecture '{name}': use seed4, seed3, fast or CHANNELS:KERNELS[:resize|convtranspose], e.g. 16,32,64:3,5,7:resize"
            ));
        }
        let list = |s: &str| -> Result<Vec<usize>, String> {
            s.split(',')
                .map(|v| v.trim().parse::<usize>().map_err(|_| format!("'{v}' in architecture '{name}' is not a number")))
                .collect()
        };
        let upsample = match parts.get(2).copied().unwrap_or("resize") {
            "resize" => Upsample::Resize,
            "convtranspose" => Upsample::ConvTranspose,
            other => return Err(format!("unknown upsampling '{other}' in architecture '{name}': use resize or convtranspose")),
        };
        let arch = Arch { name: name.to_string(), channels: list(parts[0])?, kernels: list(parts[1])?, upsample };
        arch.validate()?;
        Ok(arch)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.channels.is_empty() || self.channels.len() != self.kernels.len() {
            return Err(format!(
                "architecture '{}' needs as many kernels as channel widths (got {} and {})",
                self.name,
                self.channels.len(),
                self.kernels.len()
            ));
        }
        if self.channels.len() > 6 {
            return Err(format!("architecture '{}' has more than 6 layers", self.name));
        }
        if let Some(k) = self.kernels.iter().find(|&&k| k % 2 == 0 || k == 0 || k > 15) {
            return Err(format!("architecture '{}': kernel {k} must be odd and at most 15", self.name));
        }
        if self.channels.iter().any(|&c| c == 0 || c > 1024) {
            return Err(format!("architecture '{}': channel widths must be 1..1024", self.name));
        }
        Ok(())
    }

    /// Input sides must be multiples of this.
    pub fn size_multiple(&self) -> u32 {
        1 << self.channels.len()
    }

    /// Every convolution in execution order.
    pub fn layers(&self) -> Vec<Layer> {
        let n = self.channels.len();
        let mut layers = Vec::with_capacity(2 * n);
        let mut cin = 3;
        for i in 0..n {
            layers.push(Layer {
                name: format!("enc{i}"),
                cin,
                cout: self.channels[i],
                kernel: self.kernels[i],
                kind: LayerKind::Down,
                activation: Activation::Relu,
            });
            cin = self.channels[i];
        }
        for j in 0..n {
            let i = n - 1 - j;
            let cout = if i == 0 { 3 } else { self.channels[i - 1] };
            layers.push(Layer {
                name: format!("dec{j}"),
                cin,
                cout,
                kernel: self.kernels[i],
                kind: match self.upsample {
                    Upsample::Resize => LayerKind::UpResize,
                    Upsample::ConvTranspose => LayerKind::UpTranspose,
                },
                activation: if i == 0 { Activation::Sigmoid } else { Activation::Relu },
            });
            cin = cout;
        }
        layers
    }

    /// Multiply-accumulates for one frame of `width` x `height`, in the graph the ONNX writer makes
    /// (resize decoder layers of kernel 5 and up as sub-pixel convolutions, `subpixel.rs`).
    pub fn macs(&self, width: u32, height: u32) -> u64 {
        let mut total = 0u64;
        for l in self.layers() {
            let (w, h) = (width as u64, height as u64);
            let depth = l.name[3..].parse::<u32>().unwrap_or(0);
            let out_scale = match l.kind {
                LayerKind::Down => 1u64 << (depth + 1),
                _ => 1u64 << (self.channels.len() as u32 - 1 - depth),
            };
            let pixels = (w / out_scale) * (h / out_scale);
            // A sub-pixel layer convolves a quarter of the pixels to four times the channels.
            let k = match l.kind {
                LayerKind::UpResize => subpixel_kernel(l.kernel).min(l.kernel),
                _ => l.kernel,
            };
            total += pixels * (l.cin * l.cout * k * k) as u64;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_per_frame() {
        // The shipped architecture at 256x192: the encoder 31.8 M, the sub-pixel decoder 58.7 M
        // (it was 127.8 M as upsample-then-convolve).
        assert_eq!(Arch::fast().macs(256, 192), 90_537_984);
    }

    #[test]
    fn layers_are_symmetric() {
        let a = Arch::seed4();
        let l = a.layers();
        assert_eq!(l.len(), 8);
        assert_eq!((l[0].cin, l[0].cout, l[0].kernel), (3, 16, 3));
        assert_eq!((l[3].cin, l[3].cout, l[3].kernel), (64, 128, 9));
        assert_eq!((l[4].cin, l[4].cout, l[4].kernel), (128, 64, 9));
        assert_eq!((l[7].cin, l[7].cout, l[7].kernel), (16, 3, 3));
        assert_eq!(l[7].activation, Activation::Sigmoid);
        assert_eq!(l[4].weight_shape(), [128, 64, 9, 9]);
        assert_eq!(a.size_multiple(), 16);
    }

    #[test]
    fn parses_custom_and_rejects_bad() {
        let a = Arch::by_name("8,16:3,5:convtranspose").unwrap();
        assert_eq!(a.channels, vec![8, 16]);
        assert_eq!(a.upsample, Upsample::ConvTranspose);
        assert!(Arch::by_name("8,16:3").unwrap_err().contains("as many kernels"));
        assert!(Arch::by_name("8:4").unwrap_err().contains("odd"));
        assert!(Arch::by_name("nope").unwrap_err().contains("unknown architecture"));
    }

    #[test]
    fn macs_count_every_layer() {
        let a = Arch::by_name("4:3").unwrap();
        // enc0: 3->4, 3x3 at 8x8 output; dec0: 4->3, 3x3 at 16x16 output.
        assert_eq!(a.macs(16, 16), 64 * 3 * 4 * 9 + 256 * 4 * 3 * 9);
    }
}
