//! Self-training for `--footage`: the first round's model looks again at every footage frame, and
//! what it cannot reconstruct there (a swimmer the motion analysis missed: one too small or too slow
//! to stand out from the recording's own background) is left out of the next round's training and
//! calibration as well.
//!
//! The first model's own calibration cannot say what is unusual: its held-out frames hold swimmers,
//! so its thresholds sit above them and its per-pixel spread is theirs. Instead each pixel's error
//! is compared with its median over all the recording's frames, in units of its median absolute
//! deviation: a swimmer passes any one pixel in a minority of the frames, so both measure the water.

use crate::pipeline::boxes::BBox;
use crate::pipeline::detect::DetectError;
use crate::pipeline::heatmap::{Heatmap, HeatmapBuilder, HeatmapSettings, blur, spread_floor};
use crate::pipeline::model::Autoencoder;
use crate::pipeline::morph::Morphology;
use crate::pipeline::pool::{PoolSettings, resample_mask};
use crate::pipeline::preprocess::Preprocessor;
use crate::train::dataset::Dataset;
use crate::util::stats::median_f32;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How the rounds after the first find what to leave out. Built by its caller.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfTrainSettings {
    /// Training rounds with footage; 1 (the default): the motion analysis alone decides what is left
    /// out. Two rounds find T1's and the synthetic overhead camera's swimmers but cost A2 (three seeds)
    /// and the synthetic underwater recording (docs/accuracy.md, session 19).
    pub rounds: usize,
    /// A pixel is unusual in a frame when its error exceeds its median over the recording by this
    /// many robust deviations (1.4826 median absolute deviations, the standard deviation of a normal
    /// distribution).
    pub k: f32,
    /// The error map's smoothing, model pixels: fine, to see a far swimmer.
    pub blur: f32,
    /// Unusual regions smaller than this fraction of the frame (after an opening and closing) are noise.
    pub min_area: f32,
    /// Each box found grows by this fraction of its size on every side.
    pub margin: f32,
}

impl Default for SelfTrainSettings {
    fn default() -> Self {
        SelfTrainSettings { rounds: 1, k: 6.0, blur: 1.5, min_area: 0.0005, margin: 0.25 }
    }
}

/// One frame's smoothed error, and for a footage frame its path and size.
type ErrorMap = (Vec<f32>, Option<(PathBuf, (u32, u32))>);

/// What a round found.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// Per footage frame (by path), boxes in the frame's own pixels.
    pub boxes: HashMap<PathBuf, Vec<BBox>>,
    /// Footage frames looked at.
    pub frames: usize,
}

/// Runs `model` (trained on `data`) over every frame of `data` as it was trained on (what moves
/// already filled and masked out), and returns, per footage frame, the boxes of the regions whose
/// error is unusual for their pixels, in the frame's own pixels, grown by `s.margin`.
pub fn find_missed(mut model: Autoencoder, data: &Dataset, pool: &PoolSettings, s: &SelfTrainSettings) -> Result<Found, DetectError> {
    let (w, h) = model.size();
    let (wu, hu) = (w as usize, h as usize);
    let plane = wu * hu;
    let heat = model.meta().calibration.as_ref().map(|c| c.heatmap.clone()).unwrap_or_default();
    let builder = HeatmapBuilder::new(w, h, HeatmapSettings { blur_sigma: s.blur, ..heat }, None);
    let mut pre = Preprocessor::new(w, h, model.meta().preprocess.clone());
    let sizes: HashMap<&Path, (u32, u32)> = data.footage.iter().flat_map(|d| d.frames.iter().map(move |(p, _)| (p.as_path(), d.size))).collect();
    // Every frame's smoothed error, NaN where it is left out (outside the pool, or moving).
    let (mut tmp, mut hm) = (vec![0.0f32; plane], Heatmap::default());
    let mut maps: Vec<ErrorMap> = Vec::with_capacity(data.train.len() + data.val.len());
    for smp in data.train.iter().chain(&data.val) {
        let mask = resample_mask(&smp.mask, w, h, pool.edge());
        let input = pre.run(&smp.image);
        let recon = model.reconstruct(input)?;
        builder.error_into(input, recon, &mask, &mut hm);
        let mut m = hm.score.clone();
        blur(&mut m, &mut tmp, wu, hu, builder.kernel());
        for (v, k) in m.iter_mut().zip(&mask) {
            if *k <= 0.0 {
                *v = f32::NAN;
            }
        }
        maps.push((m, sizes.get(smp.origin.as_path()).map(|sz| (smp.origin.clone(), *sz))));
    }
    // Per pixel, the median and the robust deviation over the frames that saw it.
    let (mut med, mut dev) = (vec![f32::NAN; plane], vec![0.0f32; plane]);
    let mut col = Vec::with_capacity(maps.len());
    for i in 0..plane {
        col.clear();
        col.extend(maps.iter().map(|m| m.0[i]).filter(|v| !v.is_nan()));
        if col.len() < 3 {
            continue;
        }
        let m = median_f32(&mut col).unwrap_or(0.0);
        col.iter_mut().for_each(|v| *v = (*v - m).abs());
        dev[i] = median_f32(&mut col).unwrap_or(0.0) * 1.4826;
        med[i] = m;
    }
    let floor = spread_floor(&dev);
    let min_px = ((s.min_area * plane as f32).ceil() as usize).max(2);
    let mut morph = Morphology::new();
    let (mut binary, mut z) = (vec![0u8; plane], vec![0.0f32; plane]);
    let mut found = Found::default();
    for (m, origin) in &maps {
        let Some((path, (fw, fh))) = origin else { continue };
        found.frames += 1;
        for i in 0..plane {
            z[i] = if m[i].is_nan() || med[i].is_nan() { 0.0 } else { (m[i] - med[i]) / dev[i].max(floor) };
            binary[i] = u8::from(z[i] > s.k);
        }
        morph.open(&mut binary, wu, hu, 1);
        morph.close(&mut binary, wu, hu, 2);
        let (sx, sy) = (*fw as f32 / w as f32, *fh as f32 / h as f32);
        let boxes: Vec<BBox> = morph
            .components(&binary, &z, wu, hu)
            .iter()
            .filter(|c| c.pixels >= min_px)
            .map(|c| {
                let b = BBox::new(c.x1 as f32 * sx, c.y1 as f32 * sy, c.x2 as f32 * sx, c.y2 as f32 * sy);
                let (mx, my) = (b.width() * s.margin, b.height() * s.margin);
                BBox::new((b.x1 - mx).max(0.0), (b.y1 - my).max(0.0), (b.x2 + mx).min(*fw as f32), (b.y2 + my).min(*fh as f32))
            })
            .collect();
        if !boxes.is_empty() {
            found.boxes.insert(path.clone(), boxes);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::pool::MaskSpec;
    use crate::train::dataset::DatasetSpec;
    use crate::train::footage::FootageSettings;

    /// The shipped model (the demo venue's empty pool) as a first round's model, on a recording of
    /// that venue with two or three swimmers in every frame, too small from the stands for the
    /// coarse motion analysis to see (its finer second look, which would find them, is switched off
    /// here to leave them for this round): each pixel's error against its own median over the
    /// recording finds them, and little else.
    #[test]
    fn the_first_model_finds_the_swimmers_the_motion_analysis_missed() {
        let d = tempfile::tempdir().unwrap();
        let scene = crate::synth::Scene::new(1, 320, 240, (2, 3));
        let mut truths = Vec::new();
        for i in 0..40u64 {
            let (img, t) = scene.render(600.0 + i as f32, i);
            img.save(d.path().join(format!("{i:02}.png"))).unwrap();
            truths.push((d.path().join(format!("{i:02}.png")), t));
        }
        let spec = DatasetSpec {
            normal: vec![],
            inpaint: vec![],
            footage: vec![d.path().into()],
            footage_settings: FootageSettings { fine_below: 0.0, ..FootageSettings::default() },
            footage_found: HashMap::new(),
            mask: MaskSpec::Auto,
            val_fraction: 0.25,
            max_size: (512, 384),
        };
        let data = Dataset::load(&spec).unwrap();
        let pool = PoolSettings { mask: MaskSpec::Auto, ..PoolSettings::default() };
        let covered = |found: &Found| {
            let mut hits = 0;
            for (p, t) in &truths {
                let boxes = found.boxes.get(p).map(Vec::as_slice).unwrap_or(&[]);
                hits += t
                    .iter()
                    .filter(|t| {
                        let (x, y) = t.bbox.center();
                        boxes.iter().any(|b| (b.x1..=b.x2).contains(&x) && (b.y1..=b.y2).contains(&y))
                    })
                    .count();
            }
            hits as f32 / truths.iter().map(|t| t.1.len()).sum::<usize>() as f32
        };
        let found = find_missed(Autoencoder::embedded().unwrap(), &data, &pool, &SelfTrainSettings::default()).unwrap();
        assert_eq!(found.frames, 40);
        let c = covered(&found);
        assert!(c >= 0.9, "found {c:.2} of the swimmers");
        // What it found is the swimmers, not the pool: boxes cover a small part of each frame.
        for (p, b) in &found.boxes {
            let f = crate::train::footage::left_out(320, 240, b);
            assert!(f < 0.25, "{}: {f:.2} of the frame", p.display());
        }
    }
}
