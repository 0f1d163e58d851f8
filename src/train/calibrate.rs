//! Calibration: runs a model over held-out empty frames, measures the per-pixel error statistics, the
//! thresholds, the smoothing and the noise grain ([`Calibrator`]), and stores them in the model file so
//! the device needs nothing else.

use crate::pipeline::boxes::BoxSettings;
use crate::pipeline::detect::DetectError;
use crate::pipeline::heatmap::{Heatmap, HeatmapBuilder, HeatmapSettings, blur, gaussian_kernel, spread_floor};
use crate::pipeline::model::infer::read_proto;
use crate::pipeline::model::{Autoencoder, Calibration, ModelError, ModelMeta};
use crate::pipeline::morph::Morphology;
use crate::pipeline::pool::{PoolSettings, resample_mask};
use crate::pipeline::preprocess::Preprocessor;
use crate::train::onnx::write_proto;
use crate::util::stats::{median_f32, quantile_f32};
use image::{GrayImage, RgbImage};
use std::path::Path;

/// The default quantile of the empty frames' peaks the thresholds sit at (1 = above the highest).
pub const DEFAULT_QUANTILE: f32 = 1.0;

/// The heatmap smoothing a calibration measures with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Blur {
    /// The settings' `blur_sigma`.
    AsSet,
    /// Chosen from the camera's noise grain ([`blur_for_grain`]).
    Auto,
}

/// Measures a calibration on empty frames, each with its pool mask from `pool`.
pub fn calibrate<'a>(
    model: &mut Autoencoder,
    frames: impl IntoIterator<Item = &'a RgbImage>,
    pool: &PoolSettings,
    settings: HeatmapSettings,
    blur: Blur,
    quantile: f32,
) -> Result<Option<Calibration>, DetectError> {
    calibrate_inner(model, frames.into_iter().map(|f| (f, None)), pool, settings, blur, quantile)
}

/// Like [`calibrate`], each frame with its own mask at the frame's size (255: measured, 0: left out;
/// footage's moving regions), resampled and eroded as `pool`'s own mask would be.
pub fn calibrate_masked<'a>(
    model: &mut Autoencoder,
    frames: impl IntoIterator<Item = (&'a RgbImage, &'a GrayImage)>,
    pool: &PoolSettings,
    settings: HeatmapSettings,
    blur: Blur,
    quantile: f32,
) -> Result<Option<Calibration>, DetectError> {
    calibrate_inner(model, frames.into_iter().map(|(f, m)| (f, Some(m))), pool, settings, blur, quantile)
}

fn calibrate_inner<'a>(
    model: &mut Autoencoder,
    frames: impl Iterator<Item = (&'a RgbImage, Option<&'a GrayImage>)>,
    pool: &PoolSettings,
    settings: HeatmapSettings,
    blur: Blur,
    quantile: f32,
) -> Result<Option<Calibration>, DetectError> {
    let (w, h) = model.size();
    let mut pre = Preprocessor::new(w, h, model.meta().preprocess.clone());
    let mut cal = Calibrator::new(w, h, settings);
    let mut cached: Option<((u32, u32), Vec<f32>)> = None;
    for (img, own) in frames {
        let own_mask;
        let m = match own {
            Some(mask) => {
                own_mask = resample_mask(mask, w, h, pool.edge());
                &own_mask
            }
            None => {
                if cached.as_ref().is_none_or(|(d, _)| *d != img.dimensions()) {
                    cached = Some((img.dimensions(), pool.model_mask(img, w, h)?));
                }
                let Some((_, m)) = &cached else { continue };
                m
            }
        };
        let input = pre.run(img);
        let recon = model.reconstruct(input)?;
        cal.add(input, recon, m);
    }
    let portable = !matches!(pool.mask, crate::pipeline::pool::MaskSpec::Image(_));
    let cal = match blur {
        Blur::AsSet => cal.finish(quantile),
        Blur::Auto => cal.finish_auto(quantile),
    };
    Ok(cal.map(|c| Calibration { pool: portable.then(|| pool.clone()), ..c }))
}

/// Rewrites a model file with a new calibration (everything else unchanged).
pub fn store_calibration(path: &Path, cal: Calibration) -> Result<(), ModelError> {
    let mut proto = read_proto(path)?;
    let mut meta = ModelMeta::from_proto(path, &proto)?;
    meta.calibration = Some(cal);
    proto.metadata_props = meta.to_props();
    write_proto(path, &proto)
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

/// The box stage's opening and closing radii, in model pixels.
#[derive(Clone, Copy, Debug)]
pub struct BoxRadii {
    pub open: usize,
    pub close: usize,
}

/// The noise grain is measured where the standardised heatmap exceeds this fraction of the threshold.
pub const NOISE_CUT: f32 = 0.5;

/// The median over `maps` (raw smoothed error of empty frames) of the largest blob, as a fraction of the
/// frame, left by the box stage's opening and closing (`radii`) where the standardised score exceeds `cut`.
#[allow(clippy::too_many_arguments)]
fn noise_area(maps: &[Vec<f32>], mean: &[f32], std: &[f32], floor: f32, cut: f32, w: usize, h: usize, radii: BoxRadii) -> f32 {
    let mut morph = Morphology::new();
    let mut binary = vec![0u8; w * h];
    let mut largest: Vec<f32> = maps
        .iter()
        .map(|m| {
            for (i, b) in binary.iter_mut().enumerate() {
                *b = u8::from(m[i] > 0.0 && (m[i] - mean[i]) / std[i].max(floor) > cut);
            }
            morph.open(&mut binary, w, h, radii.open);
            morph.close(&mut binary, w, h, radii.close);
            let comps = morph.components(&binary, m, w, h);
            comps.iter().map(|c| c.pixels).max().unwrap_or(0) as f32 / (w * h).max(1) as f32
        })
        .collect();
    median_f32(&mut largest).unwrap_or(0.0)
}

/// The smoothing `blur_sigma = "auto"` calibrates with first, to measure the noise grain.
pub const REFERENCE_BLUR: f32 = 1.5;

/// The largest smoothing the automatic choice picks, in model pixels. A wider one joins a swimmer to
/// the one beside or behind it and spreads a thin, far swimmer into a tall blob: 7 instead of 10 (the
/// ietr-pool T1/T2 camera measured 8.4-9.9) raises T1 from F1 0.904 to 0.952 and T2 from 0.864 to
/// 0.876 over three training seeds, leaves V1 and V3 (at most 6.8) as they were, and raises the
/// synthetic underwater venues' recall from 0.758 to 0.809 (they measured 7.9-9.8); 6 costs V1 0.03
/// F1 at IoU 0.5 (docs/accuracy.md, session 18).
pub const MAX_AUTO_BLUR: f32 = 7.0;

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
    /// The box stage's morphology, which the noise grain is measured through.
    radii: BoxRadii,
    /// Per frame, the masked error before smoothing and the pool mask.
    errors: Vec<(Vec<f32>, Vec<f32>)>,
    width: u32,
    height: u32,
}

impl Calibrator {
    pub fn new(width: u32, height: u32, settings: HeatmapSettings) -> Self {
        let boxes = BoxSettings::default();
        let radii = BoxRadii { open: boxes.open_radius as usize, close: boxes.close_radius as usize };
        Calibrator { builder: HeatmapBuilder::new(width, height, settings, None), radii, errors: Vec::new(), width, height }
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
                blur(&mut m, &mut tmp, w, h, self.builder.kernel());
                m.iter_mut().zip(mask).for_each(|(s, k)| *s *= k);
                m
            })
            .collect();
        // Per pixel over the frames that measured it: a frame's mask may leave a pixel out (footage's
        // swimmers); with one mask for every frame this is the plain mean over frames.
        let mut mean = vec![0.0f64; plane];
        let mut sq = vec![0.0f64; plane];
        let mut count = vec![0u32; plane];
        for (m, (_, mask)) in maps.iter().zip(&self.errors) {
            for i in 0..plane {
                mean[i] += m[i] as f64;
                sq[i] += (m[i] as f64).powi(2);
                count[i] += u32::from(mask[i] > 0.0);
            }
        }
        let m1: Vec<f64> = mean.iter().zip(&count).map(|(s, &c)| s / c.max(1) as f64).collect();
        let m2: Vec<f64> = sq.iter().zip(&count).map(|(s, &c)| s / c.max(1) as f64).collect();
        let mean: Vec<f32> = m1.iter().map(|&m| m as f32).collect();
        let std: Vec<f32> = m2.iter().zip(&m1).map(|(s, m)| (s - m * m).max(0.0).sqrt() as f32).collect();
        // With few frames the per-pixel spread is noisy: blend it with a local average of itself.
        let mut std_s = std.clone();
        blur(&mut std_s, &mut tmp, w, h, &gaussian_kernel(3.0));
        let std: Vec<f32> = std.iter().zip(&std_s).map(|(a, b)| a.max(*b)).collect();
        let floor = spread_floor(&std);
        // Per frame, the highest score that survives the box stage's opening (a 3x3 minimum): the
        // thresholds sit at quantile `q` of these peaks, with a margin, so empty frames raise no box.
        // Each frame is standardised with statistics it is part of, so no score exceeds sqrt(n - 1)
        // (4.1 for 18 frames, 6.6 for 45): with few frames the threshold, and the noise grain measured
        // at a fraction of it, follow the count more than the camera. Leaving the frame out of its own
        // statistics steadies the smoothing on a synthetic camera and loses on real ones, whose
        // heavy-tailed glints then score 10 or more (docs/accuracy.md, session 28).
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
        let quantile = |v: &mut Vec<f32>| -> f32 { quantile_f32(v, q).unwrap_or(0.0) * CALIBRATION_MARGIN };
        let threshold = quantile(&mut std_peaks).max(1e-6);
        let noise_area = noise_area(&maps, &mean, &std, floor, threshold * NOISE_CUT, w, h, self.radii);
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

    /// The box stage's default radii (1 and 2), as the calibration uses them.
    const DEFAULT_RADII: BoxRadii = BoxRadii { open: 1, close: 2 };

    fn settings(blur: f32, standardize: bool, exponent: f32) -> HeatmapSettings {
        HeatmapSettings { exponent, blur_sigma: blur, standardize, brightness_weight: 1.0, ..Default::default() }
    }

    #[test]
    fn the_default_radii_are_the_box_stages() {
        let b = BoxSettings::default();
        assert_eq!((DEFAULT_RADII.open, DEFAULT_RADII.close), (b.open_radius as usize, b.close_radius as usize));
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
        let mut b = HeatmapBuilder::new(w, h, settings(0.0, true, 1.0), Some(c.stats()));
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
            let mut b = HeatmapBuilder::new(w, h, HeatmapSettings { adapt_rate: rate, ..settings(0.0, true, 1.0) }, Some(c.stats()));
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
        let area = noise_area(&maps, &vec![0.0; w * h], &vec![1.0; w * h], 1e-6, 0.5, w, h, DEFAULT_RADII);
        assert_eq!(area, 36.0 / 1600.0);
        // Outside the pool (zero error) nothing counts, however low the cut.
        let empty = vec![vec![0.0f32; w * h]];
        assert_eq!(noise_area(&empty, &vec![-1.0; w * h], &vec![1.0; w * h], 1e-6, 0.5, w, h, DEFAULT_RADII), 0.0);
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
