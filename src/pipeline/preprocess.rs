//! Pre-processing: a source frame becomes the model's input, a CHW f32 tensor at the model's size in
//! [0,1], with the optional range compression and bright-spot suppression the model was trained with.

use crate::pipeline::model::Preprocess;
use image::RgbImage;

/// Area-averaging resampler from one source size to the model size, with its weight tables and output
/// buffer kept across frames.
#[derive(Clone, Debug)]
pub struct Preprocessor {
    settings: Preprocess,
    out_w: u32,
    out_h: u32,
    src: (u32, u32),
    xw: Taps,
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

/// [`area_weights`] flattened for the horizontal pass: every output reads `n` consecutive source
/// pixels from `start`, with zero weights padding the ones it does not cover (adding `0 * v` leaves
/// the sums as they were), so the inner loop has a fixed length and no indirection.
#[derive(Clone, Debug, Default)]
struct Taps {
    n: usize,
    start: Vec<u32>,
    weight: Vec<f32>,
}

impl Taps {
    fn new(src: u32, dst: u32) -> Taps {
        let lists = area_weights(src, dst);
        let n = lists.iter().map(Vec::len).max().unwrap_or(0);
        let mut taps = Taps { n, start: Vec::with_capacity(lists.len()), weight: vec![0.0; n * lists.len()] };
        for (i, list) in lists.iter().enumerate() {
            // Every index in a list is distinct and below `src`, so `src >= n` and the window fits.
            let first = list.first().map_or(0, |e| e.0).min(src.saturating_sub(n as u32));
            taps.start.push(first);
            for &(s, w) in list {
                taps.weight[i * n + (s - first) as usize] = w;
            }
        }
        taps
    }
}

/// One output row of the horizontal pass: `acc` is an interleaved RGB row of the source width, the
/// outputs go to the three planes' rows, scaled to [0,1]. `n` is `taps.n`; inlined, so a constant
/// `n` at the call gives a loop of fixed length.
#[inline(always)]
fn horizontal(taps: &Taps, n: usize, acc: &[f32], r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
    let weights = taps.weight.chunks_exact(n);
    for ((((&start, ws), r), g), b) in taps.start.iter().zip(weights).zip(r).zip(g).zip(b) {
        let px = &acc[start as usize * 3..][..3 * n];
        let (mut sr, mut sg, mut sb) = (0.0f32, 0.0f32, 0.0f32);
        for (p, w) in px.chunks_exact(3).zip(ws) {
            sr += p[0] * w;
            sg += p[1] * w;
            sb += p[2] * w;
        }
        *r = sr / 255.0;
        *g = sg / 255.0;
        *b = sb / 255.0;
    }
}

impl Preprocessor {
    pub fn new(out_w: u32, out_h: u32, settings: Preprocess) -> Preprocessor {
        Preprocessor {
            settings,
            out_w,
            out_h,
            src: (0, 0),
            xw: Taps::default(),
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
        crate::pipeline::simd::avx2_or!(self.fill_avx2(img), self.fill(img));
        &self.out
    }

    /// [`fill`](Self::fill) compiled for AVX2 ([`crate::pipeline::simd`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn fill_avx2(&mut self, img: &RgbImage) {
        self.fill(img)
    }

    #[inline(always)]
    fn fill(&mut self, img: &RgbImage) {
        let (sw, sh) = img.dimensions();
        if self.src != (sw, sh) {
            self.xw = Taps::new(sw, self.out_w);
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
            let (r, rest) = self.out.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            let row = y * ow..(y + 1) * ow;
            let (r, g, b) = (&mut r[row.clone()], &mut g[row.clone()], &mut b[row]);
            // The tap count as a constant for the common ratios (2: upscaling, 3-4: down to 1/3).
            match self.xw.n {
                2 => horizontal(&self.xw, 2, acc, r, g, b),
                3 => horizontal(&self.xw, 3, acc, r, g, b),
                4 => horizontal(&self.xw, 4, acc, r, g, b),
                n => horizontal(&self.xw, n, acc, r, g, b),
            }
        }
        apply_settings(&self.settings, &mut self.out, plane);
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
    fn resampling_equals_the_plain_area_average() {
        // Down (2.5, 3.33, 1.5 and 7x: the generic path), up, and one size unchanged; each output
        // against the sums over `area_weights` directly, exactly (the same sums in the same order).
        let img = RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (x * y % 251) as u8]));
        for (ow, oh) in [(256u32, 192u32), (192, 144), (427, 320), (91, 68), (700, 500), (640, 480)] {
            let out = Preprocessor::new(ow, oh, Preprocess::default()).run(&img).to_vec();
            let (xw, yw) = (area_weights(640, ow), area_weights(480, oh));
            let plane = (ow * oh) as usize;
            for (y, wy) in yw.iter().enumerate() {
                for (x, wx) in xw.iter().enumerate() {
                    for c in 0..3 {
                        // The vertical pass first, per source column, then the horizontal one.
                        let col = |sx: u32| wy.iter().fold(0.0f32, |a, &(sy, w)| a + img.get_pixel(sx, sy)[c] as f32 * w);
                        let want = wx.iter().fold(0.0f32, |a, &(sx, w)| a + col(sx) * w) / 255.0;
                        assert_eq!(out[c * plane + y * ow as usize + x], want, "{ow}x{oh} at {x},{y} channel {c}");
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_variants_agree_bit_for_bit() {
        if !crate::pipeline::simd::both_variants_run() {
            return;
        }
        let img = RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x * 7 + y) as u8, (x ^ y) as u8, (x * y % 251) as u8]));
        for (ow, oh) in [(256u32, 192u32), (91, 68), (700, 500)] {
            let mut plain = Preprocessor::new(ow, oh, Preprocess::default());
            plain.fill(&img);
            let mut avx2 = Preprocessor::new(ow, oh, Preprocess::default());
            // SAFETY: this CPU has AVX2, checked above.
            unsafe { avx2.fill_avx2(&img) };
            assert_eq!(plain.out, avx2.out, "{ow}x{oh}");
        }
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
