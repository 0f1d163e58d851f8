//! Pre-processing: a source frame becomes the model's input, a CHW f32 tensor at the model's size in
//! [0,1], with the optional range compression and bright-spot suppression the model was trained with.

use crate::model::Preprocess;
use image::RgbImage;

/// Area-averaging resampler from one source size to the model size, with its weight tables and output
/// buffer kept across frames.
#[derive(Debug)]
pub struct Preprocessor {
    settings: Preprocess,
    out_w: u32,
    out_h: u32,
    src: (u32, u32),
    xw: Vec<Vec<(u32, f32)>>,
    yw: Vec<Vec<(u32, f32)>>,
    row: Vec<f32>,
    out: Vec<f32>,
}

/// For each output index, the source indices it covers and their weights (summing to 1).
fn area_weights(src: u32, dst: u32) -> Vec<Vec<(u32, f32)>> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let (a, b) = (i as f64 * scale, (i as f64 + 1.0) * scale);
            if scale <= 1.0 {
                // Upscaling: linear interpolation between the two nearest source pixels.
                let c = ((i as f64 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f64);
                let lo = c.floor() as u32;
                let hi = (lo + 1).min(src - 1);
                let t = (c - lo as f64) as f32;
                return if hi == lo { vec![(lo, 1.0)] } else { vec![(lo, 1.0 - t), (hi, t)] };
            }
            let mut v = Vec::new();
            let mut s = a.floor() as u32;
            while (s as f64) < b && s < src {
                let lo = (s as f64).max(a);
                let hi = ((s + 1) as f64).min(b);
                if hi > lo {
                    v.push((s, ((hi - lo) / scale) as f32));
                }
                s += 1;
            }
            v
        })
        .collect()
}

impl Preprocessor {
    pub fn new(out_w: u32, out_h: u32, settings: Preprocess) -> Preprocessor {
        Preprocessor {
            settings,
            out_w,
            out_h,
            src: (0, 0),
            xw: Vec::new(),
            yw: Vec::new(),
            row: Vec::new(),
            out: vec![0.0; 3 * (out_w * out_h) as usize],
        }
    }

    pub fn settings(&self) -> &Preprocess {
        &self.settings
    }

    /// The model input for `img`, CHW. The buffer is reused by the next call.
    pub fn run(&mut self, img: &RgbImage) -> &[f32] {
        let (sw, sh) = img.dimensions();
        if self.src != (sw, sh) {
            self.xw = area_weights(sw, self.out_w);
            self.yw = area_weights(sh, self.out_h);
            self.row = vec![0.0; 3 * sw as usize];
            self.src = (sw, sh);
        }
        let (ow, oh) = (self.out_w as usize, self.out_h as usize);
        let raw = img.as_raw();
        let stride = sw as usize * 3;
        let plane = ow * oh;
        // Per output row: the vertical pass over whole interleaved source rows (a vectorised
        // multiply-add per source row it covers), then the horizontal pass into planar CHW in [0,1].
        for (y, ws) in self.yw.iter().enumerate() {
            let acc = &mut self.row[..stride];
            acc.fill(0.0);
            for &(s, w) in ws {
                let src = &raw[s as usize * stride..(s as usize + 1) * stride];
                acc.iter_mut().zip(src).for_each(|(a, &v)| *a += v as f32 * w);
            }
            for (x, ws) in self.xw.iter().enumerate() {
                let (mut r, mut g, mut b) = (0.0f32, 0.0f32, 0.0f32);
                for &(s, w) in ws {
                    let p = s as usize * 3;
                    r += acc[p] * w;
                    g += acc[p + 1] * w;
                    b += acc[p + 2] * w;
                }
                let i = y * ow + x;
                self.out[i] = r / 255.0;
                self.out[plane + i] = g / 255.0;
                self.out[2 * plane + i] = b / 255.0;
            }
        }
        apply_settings(&self.settings, &mut self.out, plane);
        &self.out
    }
}

/// Bright-spot suppression then range compression, in place on a CHW tensor with `plane` pixels.
pub fn apply_settings(settings: &Preprocess, chw: &mut [f32], plane: usize) {
    if let Some(limit) = settings.bright_clip {
        let luma = |i: usize, t: &[f32]| 0.299 * t[i] + 0.587 * t[plane + i] + 0.114 * t[2 * plane + i];
        let (mut sum, mut n) = ([0.0f64; 3], 0usize);
        for i in 0..plane {
            if luma(i, chw) <= limit {
                for c in 0..3 {
                    sum[c] += chw[c * plane + i] as f64;
                }
                n += 1;
            }
        }
        if n > 0 {
            let mean = sum.map(|s| (s / n as f64) as f32);
            for i in 0..plane {
                if luma(i, chw) > limit {
                    for c in 0..3 {
                        chw[c * plane + i] = mean[c];
                    }
                }
            }
        }
    }
    if let Some([lo, hi]) = settings.range {
        for v in chw.iter_mut() {
            *v = lo + *v * (hi - lo);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_downscale_averages_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, _| if x < 2 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
        let mut p = Preprocessor::new(2, 1, Preprocess::default());
        let out = p.run(&img).to_vec();
        assert_eq!(out.len(), 6);
        assert!((out[0] - 1.0).abs() < 1e-6 && out[1].abs() < 1e-6); // R plane
        assert!(out[2].abs() < 1e-6 && out[3].abs() < 1e-6); // G plane
        assert!(out[4].abs() < 1e-6 && (out[5] - 1.0).abs() < 1e-6); // B plane
    }

    #[test]
    fn non_integer_scale_keeps_constant_images_constant() {
        let img = RgbImage::from_pixel(640, 480, image::Rgb([100, 150, 200]));
        let mut p = Preprocessor::new(192, 144, Preprocess::default());
        let out = p.run(&img);
        let plane = 192 * 144;
        assert!(out[..plane].iter().all(|v| (v - 100.0 / 255.0).abs() < 1e-4));
        assert!(out[2 * plane..].iter().all(|v| (v - 200.0 / 255.0).abs() < 1e-4));
    }

    #[test]
    fn range_and_bright_clip() {
        let mut chw = vec![1.0, 0.2, 1.0, 0.2, 1.0, 0.2];
        apply_settings(&Preprocess { range: Some([0.1, 0.6]), bright_clip: Some(0.9) }, &mut chw, 2);
        // The white pixel becomes the mean of the others (0.2), then everything maps to 0.1 + 0.5 v.
        for v in chw {
            assert!((v - 0.2).abs() < 1e-6, "{v}");
        }
    }
}
