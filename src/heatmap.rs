//! The heatmap: per-pixel reconstruction error (squared error summed over channels, raised to an
//! exponent), masked to the pool, smoothed, and optionally standardised by the per-pixel error
//! statistics of empty frames so that error that is always there (lane ropes, reflections) fades; and
//! the calibration that measures those statistics, the thresholds and the smoothing on empty frames.

use crate::model::Calibration;
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

/// The brightness weights accepted from a config or the command line.
pub const BRIGHTNESS_WEIGHT_RANGE: std::ops::RangeInclusive<f32> = 0.0..=10.0;

fn plain_squared_error() -> f32 {
    1.0
}

impl Default for HeatmapSettings {
    fn default() -> Self {
        HeatmapSettings {
            exponent: 1.0,
            brightness_weight: BRIGHTNESS_WEIGHT,
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
    pub blur_sigma: Option<f32>,
    pub standardize: Option<bool>,
    pub adapt_rate: Option<f32>,
    pub adapt_gate: Option<f32>,
}

impl HeatmapOverrides {
    /// `base` with the keys given here replaced.
    pub fn apply(&self, base: &HeatmapSettings) -> HeatmapSettings {
        HeatmapSettings {
            exponent: self.exponent.unwrap_or(base.exponent),
            brightness_weight: self.brightness_weight.unwrap_or(base.brightness_weight),
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
    /// `calibration` supplies the empty-frame statistics; without it the heatmap is not standardised.
    pub fn new(width: u32, height: u32, settings: HeatmapSettings, calibration: Option<&Calibration>) -> Self {
        let stats = calibration.filter(|_| settings.standardize).map(|c| {
            let floor = spread_floor(&c.std);
            let sd: Vec<f32> = c.std.iter().map(|&s| s.max(floor)).collect();
            PixelStats { mean: c.mean.clone(), var: sd.iter().map(|s| s * s).collect(), inv: sd.iter().map(|s| 1.0 / s).collect(), floor }
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
    fn error_into(&self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
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
        let e = self.settings.exponent;
        if e != 1.0 {
            score.iter_mut().for_each(|s| *s = s.powf(e));
        }
        score.iter_mut().zip(mask).for_each(|(s, m)| *s *= m);
    }

    /// The heatmap of one frame into `out` (its buffer is reused).
    pub fn build_into(&mut self, input: &[f32], recon: &[f32], mask: &[f32], out: &mut Heatmap) {
        crate::simd::avx2_or!(self.build_avx2(input, recon, mask, out), self.build(input, recon, mask, out))
    }

    /// [`build`](Self::build) compiled for AVX2 ([`crate::simd`]).
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
fn spread_floor(std: &[f32]) -> f32 {
    let mut v: Vec<f32> = std.iter().copied().filter(|s| *s > 0.0).collect();
    if v.is_empty() {
        return 1e-6;
    }
    let mid = v.len() / 2;
    let (_, median, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    (*median * 0.5).max(1e-6)
}

fn gaussian_kernel(sigma: f32) -> Vec<f32> {
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
fn blur(data: &mut [f32], tmp: &mut [f32], w: usize, h: usize, k: &[f32]) {
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

/// Thresholds sit this much above the empty frames' peaks.
pub const CALIBRATION_MARGIN: f32 = 1.1;

/// The largest value of the 3x3 minimum filter of a map: the peak a 1-pixel opening lets through.
fn eroded_peak(m: &[f32], w: usize, h: usize) -> f32 {
    let mut best = 0.0f32;
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let mut lo = f32::MAX;
            for dy in 0..3 {
                let row = &m[(y + dy - 1) * w + x - 1..(y + dy - 1) * w + x + 2];
                lo = lo.min(row[0]).min(row[1]).min(row[2]);
            }
            best = best.max(lo);
        }
    }
    best
}

/// The noise grain is measured where the standardised heatmap exceeds this fraction of the threshold.
pub const NOISE_CUT: f32 = 0.5;

/// The median over `maps` (raw smoothed error of empty frames) of the largest blob, as a fraction of the
/// frame, left by the box stage's default opening and closing where the standardised score exceeds `cut`.
fn noise_area(maps: &[Vec<f32>], mean: &[f32], std: &[f32], floor: f32, cut: f32, w: usize, h: usize) -> f32 {
    let defaults = crate::boxes::BoxSettings::default();
    let mut morph = crate::morph::Morphology::new();
    let mut binary = vec![0u8; w * h];
    let mut largest: Vec<f32> = maps
        .iter()
        .map(|m| {
            for (i, b) in binary.iter_mut().enumerate() {
                *b = u8::from(m[i] > 0.0 && (m[i] - mean[i]) / std[i].max(floor) > cut);
            }
            morph.open(&mut binary, w, h, defaults.open_radius as usize);
            morph.close(&mut binary, w, h, defaults.close_radius as usize);
            let comps = morph.components(&binary, m, w, h);
            comps.iter().map(|c| c.pixels).max().unwrap_or(0) as f32 / (w * h).max(1) as f32
        })
        .collect();
    let mid = largest.len() / 2;
    *largest.select_nth_unstable_by(mid, f32::total_cmp).1
}

/// The smoothing `blur_sigma = "auto"` calibrates with first, to measure the noise grain.
pub const REFERENCE_BLUR: f32 = 1.5;

/// The largest smoothing the automatic choice picks, in model pixels.
pub const MAX_AUTO_BLUR: f32 = 10.0;

/// How many times the noise's own radius the automatic smoothing is (see [`blur_for_grain`]).
pub const GRAIN_BLUR_FACTOR: f32 = 1.5;

/// The smoothing that suits a camera whose noise grain, measured at [`REFERENCE_BLUR`], is `noise_area`
/// (a fraction of the `width` x `height` map). The grain's radius has two parts that add in quadrature:
/// the reference blur's own spread of pixel-sized noise (1.5 sigma: what the synthetic overview camera,
/// whose noise is pixel-sized, measures) and the noise's own size (waves and highlights seen close up). The
/// smoothing is [`GRAIN_BLUR_FACTOR`] times the latter, between [`REFERENCE_BLUR`] and [`MAX_AUTO_BLUR`]:
/// a close-up camera, whose swimmers are large and whose error is patchy over them, gets a wide blur that
/// fills them in; an overview camera keeps a fine one that does not wash its small swimmers out.
pub fn blur_for_grain(noise_area: f32, width: u32, height: u32) -> f32 {
    let px = (noise_area.max(0.0) * width as f32 * height as f32).min(f32::MAX);
    let radius = (px / std::f32::consts::PI).sqrt();
    let own = (radius * radius - (1.5 * REFERENCE_BLUR).powi(2)).max(0.0).sqrt();
    (GRAIN_BLUR_FACTOR * own).clamp(REFERENCE_BLUR, MAX_AUTO_BLUR)
}

/// Accumulates the error maps of held-out empty frames into a [`Calibration`].
pub struct Calibrator {
    builder: HeatmapBuilder,
    /// Per frame, the masked error before smoothing and the pool mask.
    errors: Vec<(Vec<f32>, Vec<f32>)>,
    width: u32,
    height: u32,
}

impl Calibrator {
    pub fn new(width: u32, height: u32, settings: HeatmapSettings) -> Self {
        Calibrator { builder: HeatmapBuilder::new(width, height, settings, None), errors: Vec::new(), width, height }
    }

    /// Adds one empty frame (model input and its reconstruction, CHW) with its pool mask.
    pub fn add(&mut self, input: &[f32], recon: &[f32], mask: &[f32]) {
        let mut h = Heatmap::default();
        self.builder.error_into(input, recon, mask, &mut h);
        self.errors.push((h.score, mask.to_vec()));
    }

    pub fn frames(&self) -> usize {
        self.errors.len()
    }

    /// Like [`finish`](Self::finish), with the smoothing chosen from the camera's noise grain: measured
    /// at [`REFERENCE_BLUR`], the statistics and thresholds then measured again at
    /// [`blur_for_grain`]'s smoothing. The calibration records the smoothing it chose.
    pub fn finish_auto(mut self, q: f32) -> Option<Calibration> {
        self.set_blur(REFERENCE_BLUR);
        let first = self.finish_ref(q)?;
        let sigma = blur_for_grain(first.noise_area.unwrap_or(0.0), self.width, self.height);
        if (sigma - REFERENCE_BLUR).abs() < 0.05 {
            return Some(first);
        }
        self.set_blur(sigma);
        self.finish_ref(q)
    }

    fn set_blur(&mut self, sigma: f32) {
        let settings = HeatmapSettings { blur_sigma: sigma, ..self.builder.settings().clone() };
        self.builder = HeatmapBuilder::new(self.width, self.height, settings, None);
    }

    /// Per-pixel mean and spread, and the thresholds at quantile `q` of the empty frames' scores, with
    /// the smoothing of the settings given to [`new`](Self::new).
    pub fn finish(self, q: f32) -> Option<Calibration> {
        self.finish_ref(q)
    }

    fn finish_ref(&self, q: f32) -> Option<Calibration> {
        let n = self.errors.len();
        if n == 0 {
            return None;
        }
        let plane = (self.width * self.height) as usize;
        let (w, h) = (self.width as usize, self.height as usize);
        // The smoothed maps, as the device's heatmap builder makes them.
        let mut tmp = vec![0.0; plane];
        let maps: Vec<Vec<f32>> = self
            .errors
            .iter()
            .map(|(e, mask)| {
                let mut m = e.clone();
                blur(&mut m, &mut tmp, w, h, &self.builder.kernel);
                m.iter_mut().zip(mask).for_each(|(s, k)| *s *= k);
                m
            })
            .collect();
        let mut mean = vec![0.0f64; plane];
        let mut sq = vec![0.0f64; plane];
        for m in &maps {
            for i in 0..plane {
                mean[i] += m[i] as f64;
                sq[i] += (m[i] as f64).powi(2);
            }
        }
        let mean: Vec<f32> = mean.iter().map(|s| (s / n as f64) as f32).collect();
        let std: Vec<f32> = sq
            .iter()
            .zip(&mean)
            .map(|(s, &m)| ((s / n as f64 - (m as f64).powi(2)).max(0.0)).sqrt() as f32)
            .collect();
        // With few frames the per-pixel spread is noisy: blend it with a local average of itself.
        let mut std_s = std.clone();
        blur(&mut std_s, &mut tmp, w, h, &gaussian_kernel(3.0));
        let std: Vec<f32> = std.iter().zip(&std_s).map(|(a, b)| a.max(*b)).collect();
        let floor = spread_floor(&std);
        // Per frame, the highest score that survives the box stage's opening (a 3x3 minimum): the
        // thresholds sit at quantile `q` of these peaks, with a margin, so empty frames raise no box.
        let mut raw_peaks = Vec::with_capacity(n);
        let mut std_peaks = Vec::with_capacity(n);
        let mut standardised = vec![0.0f32; plane];
        for m in &maps {
            for i in 0..plane {
                standardised[i] = if m[i] > 0.0 { ((m[i] - mean[i]) / std[i].max(floor)).max(0.0) } else { 0.0 };
            }
            raw_peaks.push(eroded_peak(m, w, h));
            std_peaks.push(eroded_peak(&standardised, w, h));
        }
        let quantile = |v: &mut Vec<f32>| -> f32 {
            let k = ((v.len() - 1) as f32 * q).round() as usize;
            *v.select_nth_unstable_by(k, f32::total_cmp).1 * CALIBRATION_MARGIN
        };
        let threshold = quantile(&mut std_peaks).max(1e-6);
        let noise_area = noise_area(&maps, &mean, &std, floor, threshold * NOISE_CUT, w, h);
        let settings = self.builder.settings().clone();
        Some(Calibration {
            width: self.width,
            height: self.height,
            threshold,
            raw_threshold: quantile(&mut raw_peaks).max(1e-9),
            mean,
            std,
            heatmap: settings,
            quantile: q,
            frames: n,
            pool: None,
            noise_area: Some(noise_area),
        })
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
        if !crate::simd::both_variants_run() {
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
        let mut cal = Calibrator::new(w, h, settings(1.5, true, 1.0));
        cal.add(&recon, &input, &mask);
        cal.add(&input, &input, &mask);
        let cal = cal.finish(1.0).expect("two frames");
        for (blur, stats) in [(1.5, Some(&cal)), (8.2, None), (0.0, Some(&cal))] {
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

    #[test]
    fn standardisation_suppresses_error_that_is_always_there() {
        // Pixel 0 always has error 1.0 +- 0.1 on empty frames (a lane rope); pixel 1 always ~0.
        let (w, h) = (2u32, 1u32);
        let mut cal = Calibrator::new(w, h, settings(0.0, true, 1.0));
        for k in 0..20 {
            let e: f32 = 1.0 + if k % 2 == 0 { 0.1 } else { -0.1 };
            let e1: f32 = if k % 2 == 0 { 0.011 } else { 0.009 };
            let input = [e.sqrt(), e1.sqrt(), 0.0, 0.0, 0.0, 0.0];
            cal.add(&input, &[0.0; 6], &[1.0, 1.0]);
        }
        let c = cal.finish(0.99).unwrap();
        assert!((c.mean[0] - 1.0).abs() < 1e-4 && (c.mean[1] - 0.01).abs() < 1e-4);
        // A frame with the usual rope error and a swimmer-sized error at pixel 1.
        let mut b = HeatmapBuilder::new(w, h, settings(0.0, true, 1.0), Some(&c));
        let mut hm = Heatmap::default();
        b.build_into(&[1.0, 0.9, 0.0, 0.0, 0.0, 0.0], &[0.0; 6], &[1.0, 1.0], &mut hm);
        assert!(hm.score[0] < 1.0, "rope standardised away: {}", hm.score[0]);
        assert!(hm.score[1] > 10.0, "swimmer stands out: {}", hm.score[1]);
    }

    #[test]
    fn adaptation_learns_the_drift_but_not_a_passing_swimmer() {
        // Empty frames: error 0.01 +- 0.001 everywhere. Live: pixel 0 drifted to 0.05 +- 0.005 (new
        // light), pixel 1 stays as calibrated until a swimmer passes over it for 5 frames.
        let (w, h) = (2u32, 1u32);
        let mut cal = Calibrator::new(w, h, settings(0.0, true, 1.0));
        for k in 0..20 {
            let e: f32 = 0.01 + if k % 2 == 0 { 0.001 } else { -0.001 };
            cal.add(&[e.sqrt(), e.sqrt(), 0.0, 0.0, 0.0, 0.0], &[0.0; 6], &[1.0, 1.0]);
        }
        let c = cal.finish(0.99).unwrap();
        let live = |k: usize, swimmer: bool| {
            let drift: f32 = 0.05 + if k.is_multiple_of(2) { 0.005 } else { -0.005 };
            let p1: f32 = if swimmer { 0.09 } else { 0.01 };
            [drift.sqrt(), p1.sqrt(), 0.0, 0.0, 0.0, 0.0]
        };
        let run = |rate: f32| {
            let mut b = HeatmapBuilder::new(w, h, HeatmapSettings { adapt_rate: rate, ..settings(0.0, true, 1.0) }, Some(&c));
            let mut hm = Heatmap::default();
            let mut first = 0.0;
            for k in 0..200 {
                b.build_into(&live(k, false), &[0.0; 6], &[1.0, 1.0], &mut hm);
                if k == 0 {
                    first = hm.score[0];
                }
            }
            let drift = hm.score[0];
            let mut swimmer = f32::MAX; // its lowest score over the frames it is there
            for k in 200..205 {
                b.build_into(&live(k, true), &[0.0; 6], &[1.0, 1.0], &mut hm);
                swimmer = swimmer.min(hm.score[1]);
            }
            (first, drift, swimmer)
        };
        // Without adaptation the drift scores as high as on the first frame, for ever.
        let (first, drift, _) = run(0.0);
        assert!(first > 20.0 && drift > 20.0, "{first} {drift}");
        // With it, the drift fades to the noise level, and the swimmer still stands out on each of its frames.
        let (first, drift, swimmer) = run(0.05);
        assert!(first > 20.0, "{first}");
        assert!(drift < 3.0, "the drift is learnt: {drift}");
        assert!(swimmer > 10.0, "the swimmer is not: {swimmer}");
    }

    #[test]
    fn thresholds_sit_above_the_empty_frames_peaks() {
        // 6x6 frames of uniform error 0.01 * (k+1), one with an isolated hot pixel that an opening removes.
        let (w, h) = (6u32, 6u32);
        let n = 36;
        let mut cal = Calibrator::new(w, h, settings(0.0, true, 1.0));
        for k in 0..5 {
            let e = 0.01 * (k + 1) as f32;
            let mut input = vec![0.0f32; 3 * n];
            input[..n].iter_mut().for_each(|v| *v = e.sqrt());
            if k == 0 {
                input[14] = 3.0; // a single-pixel glint
            }
            cal.add(&input, &vec![0.0; 3 * n], &vec![1.0; n]);
        }
        let c = cal.finish(1.0).unwrap();
        assert!((c.raw_threshold - 0.05 * CALIBRATION_MARGIN).abs() < 1e-4, "{}", c.raw_threshold);
        assert!(c.threshold > 0.0 && c.threshold.is_finite());
        assert_eq!(c.frames, 5);
        assert!(c.noise_area.is_some_and(|a| (0.0..1.0).contains(&a)), "{:?}", c.noise_area);
    }

    #[test]
    fn the_noise_grain_is_the_median_largest_blob_after_the_box_morphology() {
        // 40x40 maps, standardised as they are (mean 0, spread 1), cut at 0.5: each frame has a square
        // blob of side 4, 6 or 8 plus a lone pixel that the opening removes; the median largest is 6x6.
        let (w, h) = (40usize, 40usize);
        let maps: Vec<Vec<f32>> = [8usize, 4, 6]
            .iter()
            .map(|&side| {
                let mut m = vec![0.1f32; w * h];
                for y in 5..5 + side {
                    for x in 10..10 + side {
                        m[y * w + x] = 2.0;
                    }
                }
                m[30 * w + 30] = 9.0;
                m
            })
            .collect();
        let area = noise_area(&maps, &vec![0.0; w * h], &vec![1.0; w * h], 1e-6, 0.5, w, h);
        assert_eq!(area, 36.0 / 1600.0);
        // Outside the pool (zero error) nothing counts, however low the cut.
        let empty = vec![vec![0.0f32; w * h]];
        assert_eq!(noise_area(&empty, &vec![-1.0; w * h], &vec![1.0; w * h], 1e-6, 0.5, w, h), 0.0);
    }

    #[test]
    fn the_automatic_blur_grows_with_the_noise_grain_beyond_the_reference_blur() {
        let (w, h) = (256u32, 192u32);
        let px = |area: f32| area / (w * h) as f32;
        // Blobs no larger than the reference blur makes of pixel noise (radius 2.25 px): the reference.
        assert_eq!(blur_for_grain(0.0, w, h), REFERENCE_BLUR);
        assert_eq!(blur_for_grain(px(std::f32::consts::PI * 2.25 * 2.25), w, h), REFERENCE_BLUR);
        // A grain of radius 5 px has an own radius of sqrt(25 - 2.25^2) = 4.47 px.
        let r5 = blur_for_grain(px(std::f32::consts::PI * 25.0), w, h);
        assert!((r5 - GRAIN_BLUR_FACTOR * (25.0f32 - 2.25 * 2.25).sqrt()).abs() < 1e-3, "{r5}");
        assert!(blur_for_grain(px(std::f32::consts::PI * 36.0), w, h) > r5);
        // Huge (or nonsense) grains stop at the ceiling.
        assert_eq!(blur_for_grain(0.5, w, h), MAX_AUTO_BLUR);
        assert_eq!(blur_for_grain(f32::INFINITY, w, h), MAX_AUTO_BLUR);
        assert_eq!(blur_for_grain(-1.0, w, h), REFERENCE_BLUR);
    }

    /// Empty frames of a `w` x `h` camera: faint noise with sparse glints (0.3 % of the pixels), pixel-sized or
    /// in `cell` x `cell` patches (highlights seen close up).
    fn noisy_calibrator(w: u32, h: u32, cell: usize, frames: u64) -> Calibrator {
        let n = (w * h) as usize;
        let mut cal = Calibrator::new(w, h, settings(REFERENCE_BLUR, true, 1.0));
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..frames {
            let patches = (w as usize).div_ceil(cell) * (h as usize).div_ceil(cell);
            let noise: Vec<f32> = (0..patches)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    if s % 1000 < 3 { 1.0 } else { 0.05 * (s / 1000 % 1000) as f32 / 1000.0 }
                })
                .collect();
            let mut input = vec![0.0f32; 3 * n];
            for y in 0..h as usize {
                for x in 0..w as usize {
                    let p = (y / cell) * (w as usize).div_ceil(cell) + x / cell;
                    input[y * w as usize + x] = noise[p];
                }
            }
            cal.add(&input, &vec![0.0; 3 * n], &vec![1.0; n]);
        }
        cal
    }

    #[test]
    fn automatic_calibration_picks_a_wider_blur_for_coarser_noise() {
        let (w, h) = (96u32, 72u32);
        // No grain at all (a perfect reconstruction): the reference blur, the same calibration as a fixed one.
        let mut still = Calibrator::new(w, h, settings(REFERENCE_BLUR, true, 1.0));
        let n = (w * h) as usize;
        (0..4).for_each(|_| still.add(&vec![0.5; 3 * n], &vec![0.5; 3 * n], &vec![1.0; n]));
        let c = still.finish_auto(1.0).unwrap();
        assert_eq!((c.heatmap.blur_sigma, c.noise_area), (REFERENCE_BLUR, Some(0.0)));
        // Glints in 8-pixel patches (highlights seen close up) against pixel-sized ones: a wider blur,
        // recorded in the calibration with the statistics, thresholds and grain measured at it.
        let fine = noisy_calibrator(w, h, 1, 12).finish_auto(1.0).unwrap();
        let at_reference = noisy_calibrator(w, h, 8, 12).finish(1.0).unwrap();
        let c = noisy_calibrator(w, h, 8, 12).finish_auto(1.0).unwrap();
        let want = blur_for_grain(at_reference.noise_area.unwrap(), w, h);
        assert_eq!(c.heatmap.blur_sigma, want);
        assert!(want > fine.heatmap.blur_sigma + 2.0, "coarse {want}, fine {}", fine.heatmap.blur_sigma);
        assert_ne!(c.threshold, at_reference.threshold);
        // The device's heatmap builder at the recorded blur reproduces the calibration's statistics.
        let mut b = HeatmapBuilder::new(w, h, c.heatmap.clone(), None);
        let mut again = noisy_calibrator(w, h, 8, 1);
        let (err, mask) = again.errors.pop().unwrap();
        let mut hm = Heatmap::default();
        let mut input = err.iter().map(|e| e.sqrt()).collect::<Vec<f32>>();
        input.resize(3 * err.len(), 0.0);
        b.raw_into(&input, &vec![0.0; input.len()], &mask, &mut hm);
        let mut expect = err.clone();
        blur(&mut expect, &mut vec![0.0; err.len()], w as usize, h as usize, &gaussian_kernel(want));
        assert!(hm.score.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!(expect != err, "the blur did something");
    }
}
