//! The detector: one frame through every stage (pool mask, pre-processing, model, heatmap, boxes),
//! with the buffers of each stage kept between frames.

use crate::pipeline::boxes::{BBox, BoxExtractor, BoxSettings};
use crate::pipeline::heatmap::{Heatmap, HeatmapBuilder, HeatmapOverrides};
use crate::pipeline::lanes::{LaneMap, LaneSettings};
use crate::pipeline::model::{Autoencoder, Calibration, ModelError};
use crate::pipeline::pool::{MaskError, PoolSettings};
use crate::pipeline::preprocess::Preprocessor;
use image::RgbImage;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Mask(#[from] MaskError),
    #[error("the detector failed on this frame ({0}); this is a bug, please report it")]
    Crashed(String),
    #[error("a {0}x{1} frame is too small: frames must be at least {MIN_SIDE}x{MIN_SIDE} pixels")]
    TooSmall(u32, u32),
}

/// The smallest frame side the detector takes: below it the pool mask and the box stage have
/// nothing to work with (and a camera never sends such frames).
pub const MIN_SIDE: u32 = 16;

/// Milliseconds spent in each stage for one frame.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Timings {
    pub preprocess: f64,
    pub infer: f64,
    pub heatmap: f64,
    pub boxes: f64,
    pub total: f64,
}

/// The result for one frame.
#[derive(Clone, Debug)]
pub struct Detection {
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BBox>,
    /// The threshold the heatmap was cut at.
    pub threshold: f32,
    pub timings: Timings,
}

/// What the detector takes beyond the model: each stage's own settings. The model's calibration
/// supplies the rest (its statistics, thresholds, smoothing and pool mask).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DetectorSettings {
    /// The pool mask; without it, the model's calibrated one (or the whole frame).
    pub pool: Option<PoolSettings>,
    /// Heatmap settings that replace the calibrated ones, key by key.
    pub heatmap: HeatmapOverrides,
    pub boxes: BoxSettings,
    /// The pool's lanes, if known: the box stage merges a swimmer's pieces along a lane and, with
    /// [`BoxSettings::min_area_m2`], sizes its smallest box by their perspective.
    pub lanes: Option<LaneSettings>,
}

/// A pool mask at model resolution and the source frame size it was built for.
type SizedMask = ((u32, u32), Arc<[f32]>);

/// Runs frames through the pipeline; owns the model and every stage's buffers.
pub struct Detector {
    model: Autoencoder,
    pre: Preprocessor,
    heat: HeatmapBuilder,
    boxes: BoxExtractor,
    pool: PoolSettings,
    /// The pool mask at model resolution, for the source size it was built for.
    mask: Option<SizedMask>,
    /// The mask as first built, shared with this detector's forks: an automatic mask comes from the
    /// first frame of a source size, and every fork must use that one, not its own first frame's.
    shared_mask: Arc<Mutex<Option<SizedMask>>>,
    heatmap: Heatmap,
    /// The file's other networks ([`crate::pipeline::model::contract::Member`]): each one's heatmap
    /// builder (its own calibration) and the factor that puts its score in the first network's units
    /// (the first's threshold over its own).
    members: Vec<(HeatmapBuilder, f32)>,
    /// A member's heatmap before it is added to the first's.
    scratch: Heatmap,
}

impl Detector {
    pub fn new(model: Autoencoder, cfg: &DetectorSettings) -> Detector {
        let meta = model.meta().clone();
        let cal = meta.calibration.as_ref();
        let calibrated = cal.map(|c| c.heatmap.clone()).unwrap_or_default();
        let settings = cfg.heatmap.apply(&calibrated);
        if cal.is_some() && settings != calibrated {
            log::warn!("the config's [heatmap] changes settings the model was calibrated with; calibrated thresholds may not fit");
        }
        if cal.is_none() {
            log::warn!("model {} has no calibration: thresholds are adaptive per frame", model.path().display());
        }
        let heat = HeatmapBuilder::new(meta.width, meta.height, settings, cal.map(Calibration::stats));
        let calibrated = cal.map(|c| if heat.standardized() { c.threshold } else { c.raw_threshold });
        // The contract gives members only beside a calibrated first network.
        let members: Vec<(HeatmapBuilder, f32)> = cal
            .map(|first| {
                meta.members
                    .iter()
                    .map(|m| {
                        let c = &m.calibration;
                        let b = HeatmapBuilder::new(meta.width, meta.height, cfg.heatmap.apply(&c.heatmap), Some(c.stats()));
                        let scale = if b.standardized() { first.threshold / c.threshold } else { first.raw_threshold / c.raw_threshold };
                        (b, scale)
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The noise grain was measured on the standardised heatmap.
        let noise_area = cal.filter(|_| heat.standardized()).and_then(|c| c.noise_area);
        let lanes = cfg.lanes.as_ref().and_then(|l| LaneMap::new(l).map_err(|e| log::warn!("lanes left out of the box stage: {e}")).ok());
        let boxes = BoxExtractor::new(cfg.boxes.clone(), calibrated).with_noise_area(noise_area).with_lanes(lanes);
        log::debug!("smallest box: {:.3} % of the frame", boxes.min_area() * 100.0);
        Detector {
            pre: Preprocessor::new(meta.width, meta.height, meta.preprocess.clone()),
            heat,
            boxes,
            pool: cfg.pool.clone().or_else(|| cal.and_then(|c| c.pool.clone())).unwrap_or_default(),
            mask: None,
            shared_mask: Arc::default(),
            heatmap: Heatmap::default(),
            members,
            scratch: Heatmap::default(),
            model,
        }
    }

    /// The same detector for another thread: settings and calibration copied, the model's optimised
    /// plan shared ([`Autoencoder::fork`]).
    pub fn fork(&self) -> Result<Detector, ModelError> {
        Ok(Detector {
            model: self.model.fork()?,
            pre: self.pre.clone(),
            heat: self.heat.clone(),
            boxes: self.boxes.clone(),
            pool: self.pool.clone(),
            mask: self.mask.clone(),
            shared_mask: Arc::clone(&self.shared_mask),
            heatmap: Heatmap::default(),
            members: self.members.clone(),
            scratch: Heatmap::default(),
        })
    }

    /// This detector and `n - 1` forks of it: one for each of `n` detection threads.
    pub fn with_forks(self, n: usize) -> Result<Vec<Detector>, ModelError> {
        let mut all = Vec::with_capacity(n.max(1));
        for _ in 1..n {
            all.push(self.fork()?);
        }
        all.push(self);
        Ok(all)
    }

    pub fn model(&self) -> &Autoencoder {
        &self.model
    }

    /// The pool mask of the last frame at the heatmap's resolution ({0,1} weights; empty when the
    /// whole frame is watched), shared rather than copied.
    pub fn mask(&self) -> Arc<[f32]> {
        self.mask.as_ref().map(|m| Arc::clone(&m.1)).unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// The heatmap of the last frame.
    pub fn heatmap(&self) -> &Heatmap {
        &self.heatmap
    }

    /// Hands out the last frame's heatmap, leaving `spare` (a buffer of an earlier frame, or empty)
    /// to be overwritten by the next frame: no copy when a heatmap must outlive the detector's turn.
    pub fn swap_heatmap(&mut self, spare: Heatmap) -> Heatmap {
        std::mem::replace(&mut self.heatmap, spare)
    }

    /// Makes sure the pool mask for `img`'s size exists, building it from `img` if neither this
    /// detector nor a fork has seen that size yet. [`detect`](Self::detect) does it too; detection
    /// threads call it in frame order, so that the first frame builds it whichever thread runs it.
    pub fn prepare(&mut self, img: &RgbImage) -> Result<(), DetectError> {
        let dims = img.dimensions();
        if dims.0 < MIN_SIDE || dims.1 < MIN_SIDE {
            return Err(DetectError::TooSmall(dims.0, dims.1));
        }
        if self.mask.as_ref().is_some_and(|(d, _)| *d == dims) {
            return Ok(());
        }
        // A poisoned lock still holds either no mask or a whole one.
        let mut shared = crate::util::sync::lock(&self.shared_mask);
        if shared.as_ref().is_none_or(|(d, _)| *d != dims) {
            let (w, h) = self.model.size();
            *shared = Some((dims, Arc::from(self.pool.model_mask(img, w, h)?)));
        }
        self.mask = shared.clone();
        Ok(())
    }

    /// Runs one frame through the pipeline.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Detection, DetectError> {
        let t0 = Instant::now();
        self.prepare(img)?;
        let input = self.pre.run(img);
        let t1 = Instant::now();
        self.model.run(input)?;
        let t2 = Instant::now();
        let mask = self.mask.as_ref().map(|m| &m.1[..]).unwrap_or(&[]);
        let recons = self.model.outputs();
        self.heat.build_into(input, &recons[0], mask, &mut self.heatmap);
        if !self.members.is_empty() {
            // The networks' standardised heatmaps averaged, each in the first's units: where they agree
            // (a body) the score stays, where one alone sees something it is divided.
            for ((b, scale), recon) in self.members.iter_mut().zip(&recons[1..]) {
                b.build_into(input, recon, mask, &mut self.scratch);
                self.heatmap.score.iter_mut().zip(&self.scratch.score).for_each(|(s, m)| *s += m * *scale);
            }
            let inv = 1.0 / (1 + self.members.len()) as f32;
            self.heatmap.score.iter_mut().for_each(|s| *s *= inv);
        }
        let t3 = Instant::now();
        let (boxes, threshold) = self.boxes.extract(&self.heatmap, img.width(), img.height());
        let t4 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
        Ok(Detection {
            width: img.width(),
            height: img.height(),
            boxes,
            threshold,
            timings: Timings {
                preprocess: ms(t0, t1),
                infer: ms(t1, t2),
                heatmap: ms(t2, t3),
                boxes: ms(t3, t4),
                total: ms(t0, t4),
            },
        })
    }
}
