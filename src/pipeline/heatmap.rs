//! The heatmap: per-pixel reconstruction error (squared error summed over channels, raised to an
//! exponent), masked to the pool, smoothed, and optionally standardised by the per-pixel error
//! statistics of empty frames so that error that is always there (lane ropes, reflections) fades.
//! The calibration that measures those statistics on empty frames is the trainer's
//! (`train::calibrate`).

use crate::util::setting::{AboveUpTo, SettingError, in_range};
use serde::{Deserialize, Serialize};

/// How reconstruction error becomes a score map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeatmapSettings {
    /// The squared error is raised to this power (the seed's contrast exponent).
    pub exponent: f32,
    /// How much the error common to the three colour channels (a change of brightness) counts against
    /// the error that changes the colour; 1 is plain squared error. Light on water (glints, caustics,
    /// waves, shadows) mostly changes brightness, a body differs from water in colour too.
    /// Models calibrated before this setting existed measured with 1, so that is what their metadata
    /// means without it.
    #[serde(default = "plain_squared_error")]
    pub brightness_weight: f32,
    /// How much the error of whitish pixels counts (bubbles, foam, splashes and glints are white; a
    /// body, a suit and a cap are not): the error of a pixel whose darkest channel lies above
    /// [`WHITE_FROM`] is weighted down towards this, fully at [`WHITE_FULL`]. 1 is off; models
    /// calibrated before it existed mean 1.
    #[serde(default = "plain_squared_error")]
    pub white_weight: f32,
    /// Gaussian smoothing of the error map, in model pixels (0 = none).
    pub blur_sigma: f32,
    /// Divide by the empty-frame spread, per pixel, after subtracting the empty-frame mean.
    pub standardize: bool,
    /// How fast those per-pixel statistics follow the live frames (the weight of each new frame in an
    /// exponential moving average; 0 keeps the empty-frame statistics as calibrated). Light, waves and
    /// framing drift after the empty pool was recorded; this lets the device learn the pool as it is now.
    /// With several detection threads (`pipeline.threads`) each follows the frames it runs.
    pub adapt_rate: f32,
    /// Pixels scoring above this (in spreads) adapt ten times slower, so a swimmer who stays still is
    /// not learnt as background within seconds.
    pub adapt_gate: f32,
}

/// The default [`HeatmapSettings::brightness_weight`]: on the ietr-pool footage 1 -> 0.5 -> 0.25 ->
/// 0.1 raise AUPRO and F1 on every video; the synthetic camera keeps its recall down to 0.2 and loses
/// it below (docs/accuracy.md). 0.25 keeps a margin from that edge.
pub const BRIGHTNESS_WEIGHT: f32 = 0.25;

/// Where [`HeatmapSettings::white_weight`] starts to apply: a pixel whose darkest channel (of the model
/// input, 0..1) is above this is whitish ...
pub const WHITE_FROM: f32 = 0.6;
/// ... and fully white from here.
pub const WHITE_FULL: f32 = 0.85;

/// The brightness weights accepted from a config or the command line.
pub const BRIGHTNESS_WEIGHT_RANGE: std::ops::RangeInclusive<f32> = 0.0..=10.0;

/// The smoothings accepted from a config or the command line, in model pixels.
pub const BLUR_SIGMA_RANGE: std::ops::RangeInclusive<f32> = 0.0..=20.0;

fn plain_squared_error() -> f32 {
    1.0
}

impl Default for HeatmapSettings {
    fn default() -> Self {
        HeatmapSettings {
            exponent: 1.0,
            brightness_weight: BRIGHTNESS_WEIGHT,
            white_weight: 1.0,
            blur_sigma: 1.5,
            standardize: true,
            adapt_rate: 0.0,
            adapt_gate: 3.0,
        }
    }
}

/// The config's `[heatmap]`: each key given replaces the model's calibrated setting, the others stay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeatmapOverrides {
    pub exponent: Option<f32>,
    pub brightness_weight: Option<f32>,
    pub white_weight: Option<f32>,
    pub blur_sigma: Option<f32>,
    pub standardize: Option<bool>,
    pub adapt_rate: Option<f32>,
    pub adapt_gate: Option<f32>,
}

impl HeatmapOverrides {
    /// Every key given lies in its range (keys as the `[heatmap]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        if let Some(e) = self.exponent {
            in_range("exponent", e, AboveUpTo(0.0, 8.0))?;
        }
        if let Some(w) = self.brightness_weight {
            in_range("brightness_weight", w, BRIGHTNESS_WEIGHT_RANGE)?;
        }
        if let Some(w) = self.white_weight {
            in_range("white_weight", w, 0.0..=1.0)?;
        }
        if let Some(b) = self.blur_sigma {
            in_range("blur_sigma", b, BLUR_SIGMA_RANGE)?;
        }
        if let Some(r) = self.adapt_rate {
            in_range("adapt_rate", r, 0.0..=1.0)?;
        }
        Ok(())
    }

    /// `base` with the keys given here replaced.
    pub fn apply(&self, base: &HeatmapSettings) -> HeatmapSettings {
        HeatmapSettings {
            exponent: self.exponent.unwrap_or(base.exponent),
            brightness_weight: self.brightness_weight.unwrap_or(base.brightness_weight),
            white_weight: self.white_weight.unwrap_or(base.white_weight),
            blur_sigma: self.blur_sigma.unwrap_or(base.blur_sigma),
            standardize: self.standardize.unwrap_or(base.standardize),
            adapt_rate: self.adapt_rate.unwrap_or(base.adapt_rate),
            adapt_gate: self.adapt_gate.unwrap_or(base.adapt_gate),
        }
    }
}

/// A score per model pixel; higher is more anomalous. Zero outside the pool.
#[derive(Clone, Debug, Default)]
pub struct Heatmap {
    pub width: u32,
    pub height: u32,
    pub score: Vec<f32>,
}

impl Heatmap {
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.score[(y * self.width + x) as usize]
    }

    pub fn max(&self) -> f32 {
        self.score.iter().copied().fold(0.0, f32::max)
    }
}

/// The per-pixel mean and spread of the smoothed error on empty frames, as a calibration measured
/// them: what the heatmap standardises by.
#[derive(Clone, Copy, Debug)]
pub struct EmptyPoolStats<'a> {
    pub mean: &'a [f32],
    pub std: &'a [f32],
}

/// Turns (input, reconstruction) pairs into heatmaps, reusing its buffers.
#[derive(Clone, Debug)]
pub struct HeatmapBuilder {
    settings: HeatmapSettings,
    width: usize,
    height: usize,
    kernel: Vec<f32>,
    tmp: Vec<f32>,
    /// Per-pixel error statistics when standardising.
    stats: Option<PixelStats>,
}

/// The per-pixel mean and variance of the smoothed error, starting from the empty frames'.
#[derive(Clone, Debug)]
struct PixelStats {
    mean: Vec<f32>,
    var: Vec<f32>,
    /// 1 / spread (at least `floor`), kept so a frame costs a multiply per pixel, not a square root.
    inv: Vec<f32>,
    /// Spreads below this count as this, so near-constant pixels do not explode.
    floor: f32,
}

impl HeatmapBuilder {
    /// `stats` are the empty frames' (from the model's calibration); without them the heatmap is not
    /// standardised.
    pub fn new(width: u32, height: u32, settings: HeatmapSettings, stats: Option<EmptyPoolStats>) -> Self {
        let stats = stats.filter(|_| settings.standardize).map(|c| {
            let floor = spread_floor(c.std);
            let sd: Vec<f32> = c.std.iter().map(|&s| s.max(floor)).collect();
            PixelStats { mean: c.mean.to_vec(), var: sd.iter().map(|s| s * s).collect(), inv: sd.iter().map(|s| 1.0 / s).collect(), floor }
        });
        HeatmapBuilder {
            kernel: gaussian_kernel(settings.blur_sigma),
            settings,
            width: width as usize,
            height: height as usize,
            tmp: vec![0.0; (width * height) as usize],
            stats,
        }
    }

    pub fn settings(&self) -> &HeatmapSettings {
        &self.settings
    }

    /// The smoothing kernel in force (calibration smooths its maps with the same one).
    pub fn kernel(&self) -> &[f32] {
        &self.kernel
    }

    pub fn standardized(&self) -> bool {
        self.stats.is_some()
    }

    /// The smoothed raw error (before standardisation) into `out`.
    #[inline(always)]
    pub fn raw_into(&mut self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
        self.error_into(input, recon, mask, out);
        blur(&mut out.score, &mut self.tmp, self.width, self.height, &self.kernel);
        out.score.iter_mut().zip(mask).for_each(|(s, m)| *s *= m);
    }

    /// The masked error (exponent applied), not yet smoothed, into `out`.
    #[inline(always)]
    pub fn error_into(&self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
        let plane = self.width * self.height;
        debug_assert!(mask.len() == plane && input.len() == 3 * plane && recon.len() == 3 * plane);
        out.width = self.width as u32;
        out.height = self.height as u32;
        out.score.resize(plane, 0.0);
        let (r, g, b) = (&input[..plane], &input[plane..2 * plane], &input[2 * plane..3 * plane]);
        let (rr, rg, rb) = (&recon[..plane], &recon[plane..2 * plane], &recon[2 * plane..3 * plane]);
        let score = &mut out.score[..plane];
        let channels = r.iter().zip(rr).zip(g.iter().zip(rg)).zip(b.iter().zip(rb));
        // The difference d splits into its mean over the channels m (brightness) and what is left
        // (colour), whose squared lengths add up: |d|^2 = 3 m^2 + |d - m|^2. Weighting the first by w
        // gives |d|^2 + (w - 1) / 3 (dr + dg + db)^2: at w = 1 exactly the plain squared error.
        let k = (self.settings.brightness_weight - 1.0) / 3.0;
        for (s, (((r, rr), (g, rg)), (b, rb))) in score.iter_mut().zip(channels) {
            let (dr, dg, db) = (r - rr, g - rg, b - rb);
            let sum = dr + dg + db;
            // max: rounding must not take a pure change of brightness below 0 at w = 0.
            *s = (dr * dr + dg * dg + db * db + k * sum * sum).max(0.0);
        }
        let ww = self.settings.white_weight;
        if ww < 1.0 {
            let span = WHITE_FULL - WHITE_FROM;
            for (s, ((r, g), b)) in score.iter_mut().zip(r.iter().zip(g).zip(b)) {
                let white = ((r.min(*g).min(*b) - WHITE_FROM) / span).clamp(0.0, 1.0);
                *s *= 1.0 - (1.0 - ww) * white;
            }
        }
        let e = self.settings.exponent;
        if e != 1.0 {
            score.iter_mut().for_each(|s| *s = s.powf(e));
        }
        score.iter_mut().zip(mask).for_each(|(s, m)| *s *= m);
    }

    /// The heatmap of one frame into `out` (its buffer is reused).
    pub fn build_into(&mut self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
        crate::pipeline::simd::avx2_or!(self.build_avx2(input, recon, mask, out), self.build(input, recon, mask, out))
    }

    /// [`build`](Self::build) compiled for AVX2 ([`crate::pipeline::simd`]).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn build_avx2(&mut self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
        self.build(input, recon, mask, out)
    }

    #[inline(always)]
    fn build(&mut self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
        self.raw_into(input, recon, mask, out);
        let Some(st) = &mut self.stats else { return };
        let (rate, gate) = (self.settings.adapt_rate.clamp(0.0, 1.0), self.settings.adapt_gate);
        if rate == 0.0 {
            for (((s, m), inv), k) in out.score.iter_mut().zip(&st.mean).zip(&st.inv).zip(mask) {
                *s = ((*s - m) * inv).max(0.0) * k;
            }
            return;
        }
        for (i, s) in out.score.iter_mut().enumerate() {
            let (e, m) = (*s, st.mean[i]);
            let z = (e - m) * st.inv[i];
            *s = z.max(0.0) * mask[i];
            if mask[i] > 0.0 {
                // Exponentially weighted mean and variance (West's update) of the residual clipped at
                // `gate` spreads, so one bright frame cannot blow the spread up.
                let sd = 1.0 / st.inv[i];
                let r = if z > gate { rate * 0.1 } else { rate };
                let d = (e - m).clamp(-gate * sd, gate * sd);
                st.mean[i] = m + r * d;
                st.var[i] = (1.0 - r) * (st.var[i] + r * d * d);
                st.inv[i] = 1.0 / st.var[i].sqrt().max(st.floor);
            }
        }
    }
}

/// Spreads below this are raised to it, so near-constant pixels do not explode when standardised.
pub fn spread_floor(std: &[f32]) -> f32 {
    let mut v: Vec<f32> = std.iter().copied().filter(|s| *s > 0.0).collect();
    crate::util::stats::median_f32(&mut v).map_or(1e-6, |m| (m * 0.5).max(1e-6))
}

pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (sigma * 2.5).ceil() as i32;
    let k: Vec<f32> = (-r..=r).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Separable convolution with edge clamping, in place (`tmp` is scratch of the same size). Outputs are
/// made [`LANES`] at a time, each summed over the taps in a register-sized block and stored once (a wide
/// smoothing has 40 taps); the taps are added in kernel order, as a plain loop would.
#[inline(always)]
pub fn blur(data: &mut [f32], tmp: &mut [f32], w: usize, h: usize, k: &[f32]) {
    if k.len() == 1 || w == 0 || h == 0 {
        return;
    }
    let r = k.len() / 2;
    let tmp = &mut tmp[..w * h];
    for (row, dst) in data.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        let clamped = |x: usize| -> f32 {
            k.iter().enumerate().map(|(j, kv)| row[(x + j).saturating_sub(r).min(w - 1)] * kv).sum()
        };
        if w <= 2 * r {
            for (x, d) in dst.iter_mut().enumerate() {
                *d = clamped(x);
            }
            continue;
        }
        // Output x (r <= x < w - r) reads row[x - r + j] for tap j.
        fir(&mut dst[r..w - r], k.len(), |j| (&row[j..], k[j]));
        for x in (0..r).chain(w - r..w) {
            dst[x] = clamped(x);
        }
    }
    for (y, dst) in data.chunks_exact_mut(w).enumerate() {
        let src = |j: usize| {
            let yy = (y + j).saturating_sub(r).min(h - 1);
            (&tmp[yy * w..(yy + 1) * w], k[j])
        };
        fir(dst, k.len(), src);
    }
}

/// Outputs per block in [`fir`]: four SSE registers, one AVX-512 register.
const LANES: usize = 16;

/// `out[i] = sum over taps j of src(j).0[i] * src(j).1`, summed in tap order.
#[inline(always)]
fn fir<'a>(out: &mut [f32], taps: usize, src: impl Fn(usize) -> (&'a [f32], f32)) {
    let n = out.len();
    let full = n - n % LANES;
    for c in (0..full).step_by(LANES) {
        let mut acc = [0.0f32; LANES];
        for j in 0..taps {
            let (s, kv) = src(j);
            let s: &[f32; LANES] = s[c..c + LANES].try_into().expect("a block of LANES");
            for (a, v) in acc.iter_mut().zip(s) {
                *a += v * kv;
            }
        }
        out[c..c + LANES].copy_from_slice(&acc);
    }
    for (i, o) in out.iter_mut().enumerate().skip(full) {
        *o = (0..taps).fold(0.0, |a, j| {
            let (s, kv) = src(j);
            a + s[i] * kv
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(blur: f32, standardize: bool, exponent: f32) -> HeatmapSettings {
        HeatmapSettings { exponent, blur_sigma: blur, standardize, brightness_weight: 1.0, ..Default::default() }
    }

    #[test]
    fn brightness_weight_discounts_only_the_error_common_to_all_channels() {
        // Pixel 0: brighter by 0.1 in every channel; pixel 1: redder and less green by 0.1 (no change of
        // brightness); pixel 2: both at once. Planar: the R row, then G, then B.
        let input = [0.6, 0.6, 0.7, 0.6, 0.4, 0.5, 0.6, 0.5, 0.6];
        let recon = [0.5; 9];
        let mut h = Heatmap::default();
        for weight in [1.0f32, 0.25, 0.0] {
            let s = HeatmapSettings { brightness_weight: weight, ..settings(0.0, false, 1.0) };
            HeatmapBuilder::new(3, 1, s, None).build_into(&input, &recon, &[1.0; 3], &mut h);
            assert!((h.score[0] - weight * 0.03).abs() < 1e-6, "{weight}: {}", h.score[0]);
            assert!((h.score[1] - 0.02).abs() < 1e-6, "{weight}: {}", h.score[1]);
            // (0.2, 0.0, 0.1): mean 0.1, colour (0.1, -0.1, 0).
            assert!((h.score[2] - (weight * 0.03 + 0.02)).abs() < 1e-6, "{weight}: {}", h.score[2]);
        }
    }

    #[test]
    fn white_weight_discounts_the_error_of_whitish_pixels_only() {
        // Pixel 0: turned white (a bubble); pixel 1: turned skin-coloured; pixel 2: half-way to white
        // (darkest channel 0.725, between WHITE_FROM and WHITE_FULL). Planar R, G, B rows.
        let input = [0.95, 0.85, 0.8, 0.95, 0.65, 0.725, 0.95, 0.55, 0.75];
        let recon = [0.3, 0.3, 0.3, 0.5, 0.5, 0.5, 0.7, 0.7, 0.7];
        let plain = settings(0.0, false, 1.0);
        let (mut a, mut b) = (Heatmap::default(), Heatmap::default());
        HeatmapBuilder::new(3, 1, plain.clone(), None).build_into(&input, &recon, &[1.0; 3], &mut a);
        let weighted = HeatmapSettings { white_weight: 0.2, ..plain };
        HeatmapBuilder::new(3, 1, weighted, None).build_into(&input, &recon, &[1.0; 3], &mut b);
        assert!((b.score[0] - 0.2 * a.score[0]).abs() < 1e-6, "{} vs {}", b.score[0], a.score[0]);
        assert_eq!(b.score[1], a.score[1]);
        assert!((b.score[2] - 0.6 * a.score[2]).abs() < 1e-5, "{} vs {}", b.score[2], a.score[2]);
    }

    #[test]
    fn config_overrides_replace_only_the_keys_given() {
        let base = HeatmapSettings { blur_sigma: 8.2, brightness_weight: 1.0, ..Default::default() };
        assert_eq!(HeatmapOverrides::default().apply(&base), base);
        let o = HeatmapOverrides { exponent: Some(2.0), brightness_weight: Some(0.5), ..Default::default() };
        assert_eq!(o.apply(&base), HeatmapSettings { exponent: 2.0, brightness_weight: 0.5, ..base.clone() });
    }

    #[test]
    fn metadata_without_a_brightness_weight_means_plain_squared_error() {
        let old: HeatmapSettings = serde_json::from_str(r#"{"exponent":1.0,"blur_sigma":8.2,"standardize":true}"#).unwrap();
        assert_eq!(old.brightness_weight, 1.0);
        assert_eq!(old.blur_sigma, 8.2);
        assert_eq!(HeatmapSettings::default().brightness_weight, BRIGHTNESS_WEIGHT);
    }

    #[test]
    fn squared_error_summed_over_channels_with_exponent_and_mask() {
        // 2x1 image: pixel 0 differs by (0.1, 0.2, 0.2), pixel 1 is outside the pool.
        let input = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        let recon = [0.4, 0.0, 0.3, 0.0, 0.3, 0.0];
        let mut b = HeatmapBuilder::new(2, 1, settings(0.0, false, 1.0), None);
        let mut h = Heatmap::default();
        b.build_into(&input, &recon, &[1.0, 0.0], &mut h);
        assert!((h.score[0] - 0.09).abs() < 1e-6, "{}", h.score[0]);
        assert_eq!(h.score[1], 0.0);
        let mut b = HeatmapBuilder::new(2, 1, settings(0.0, false, 0.5), None);
        b.build_into(&input, &recon, &[1.0, 1.0], &mut h);
        assert!((h.score[0] - 0.3).abs() < 1e-6);
        assert!((h.score[1] - 0.75f32.sqrt()).abs() < 1e-5);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_baseline_variants_agree_bit_for_bit() {
        if !crate::pipeline::simd::both_variants_run() {
            return;
        }
        let (w, h) = (70u32, 41u32);
        let plane = (w * h) as usize;
        let mut state = 12345u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        let input: Vec<f32> = (0..3 * plane).map(|_| next()).collect();
        let recon: Vec<f32> = (0..3 * plane).map(|_| next()).collect();
        let mask: Vec<f32> = (0..plane).map(|i| if i % 13 == 0 { 0.0 } else { 1.0 }).collect();
        let mean: Vec<f32> = (0..plane).map(|_| next() * 0.1).collect();
        let std: Vec<f32> = (0..plane).map(|i| if i % 7 == 0 { 0.0 } else { next() * 0.05 }).collect();
        let cal = EmptyPoolStats { mean: &mean, std: &std };
        for (blur, stats) in [(1.5, Some(cal)), (8.2, None), (0.0, Some(cal))] {
            let s = settings(blur, stats.is_some(), 1.0);
            let (mut a, mut b) = (Heatmap::default(), Heatmap::default());
            HeatmapBuilder::new(w, h, s.clone(), stats).build(&input, &recon, &mask, &mut a);
            // SAFETY: this CPU has AVX2, checked above.
            unsafe { HeatmapBuilder::new(w, h, s, stats).build_avx2(&input, &recon, &mask, &mut b) };
            assert_eq!(a.score, b.score, "blur {blur}");
        }
    }

    #[test]
    fn blur_preserves_mass_and_spreads() {
        let mut d = vec![0.0; 25];
        d[12] = 1.0;
        let mut t = vec![0.0; 25];
        blur(&mut d, &mut t, 5, 5, &gaussian_kernel(0.8));
        let s: f32 = d.iter().sum();
        assert!((s - 1.0).abs() < 1e-3, "{s}");
        assert!(d[12] < 1.0 && d[11] > 0.0 && d[12] > d[11] && d[11] > d[10]);
    }

    #[test]
    fn blur_equals_a_plain_clamped_convolution() {
        // Widths below, at and around the block size, and narrower than the kernel; exact equality,
        // since the taps are added in the same order.
        for (w, h, sigma) in [(37usize, 9usize, 1.5f32), (16, 5, 2.0), (50, 31, 8.2), (7, 12, 3.0), (1, 1, 1.0)] {
            let k = gaussian_kernel(sigma);
            let r = k.len() as isize / 2;
            let data: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 97) as f32 / 97.0).collect();
            let at = |x: isize, y: isize, d: &[f32]| d[y.clamp(0, h as isize - 1) as usize * w + x.clamp(0, w as isize - 1) as usize];
            let mut rows = vec![0.0f32; w * h];
            for y in 0..h as isize {
                for x in 0..w as isize {
                    rows[y as usize * w + x as usize] = k.iter().enumerate().map(|(j, kv)| at(x + j as isize - r, y, &data) * kv).sum();
                }
            }
            let mut want = vec![0.0f32; w * h];
            for y in 0..h as isize {
                for x in 0..w as isize {
                    want[y as usize * w + x as usize] =
                        k.iter().enumerate().fold(0.0, |a, (j, kv)| a + at(x, y + j as isize - r, &rows) * kv);
                }
            }
            let mut got = data.clone();
            blur(&mut got, &mut vec![0.0; w * h], w, h, &k);
            assert_eq!(got, want, "{w}x{h} sigma {sigma}");
        }
    }
}
