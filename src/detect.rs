//! The detector: one frame through every stage (pre-processing, model, heatmap, boxes), with the
//! buffers of each stage kept between frames, and the JSON record `poolwatch detect` prints.

use crate::boxes::{BBox, BoxExtractor};
use crate::config::Config;
use crate::heatmap::{Heatmap, HeatmapBuilder};
use crate::model::{Autoencoder, ModelError};
use crate::pool::{MaskError, PoolSettings};
use crate::preprocess::Preprocessor;
use image::RgbImage;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Mask(#[from] MaskError),
}

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

/// Runs frames through the pipeline; owns the model and every stage's buffers.
pub struct Detector {
    model: Autoencoder,
    pre: Preprocessor,
    heat: HeatmapBuilder,
    boxes: BoxExtractor,
    pool: PoolSettings,
    /// The pool mask at model resolution, for the source size it was built for.
    mask: Option<((u32, u32), Vec<f32>)>,
    heatmap: Heatmap,
}

impl Detector {
    pub fn new(model: Autoencoder, cfg: &Config) -> Detector {
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
        let heat = HeatmapBuilder::new(meta.width, meta.height, settings, cal);
        let calibrated = cal.map(|c| if heat.standardized() { c.threshold } else { c.raw_threshold });
        // The noise grain was measured on the standardised heatmap.
        let noise_area = cal.filter(|_| heat.standardized()).and_then(|c| c.noise_area);
        let boxes = BoxExtractor::new(cfg.boxes.clone(), calibrated).with_noise_area(noise_area);
        log::debug!("smallest box: {:.3} % of the frame", boxes.min_area() * 100.0);
        Detector {
            pre: Preprocessor::new(meta.width, meta.height, meta.preprocess.clone()),
            heat,
            boxes,
            pool: cfg.pool.clone().or_else(|| cal.and_then(|c| c.pool.clone())).unwrap_or_default(),
            mask: None,
            heatmap: Heatmap::default(),
            model,
        }
    }

    pub fn model(&self) -> &Autoencoder {
        &self.model
    }

    /// The pool mask of the last frame at the heatmap's resolution ({0,1} weights).
    pub fn mask(&self) -> &[f32] {
        self.mask.as_ref().map(|m| m.1.as_slice()).unwrap_or(&[])
    }

    /// The heatmap of the last frame.
    pub fn heatmap(&self) -> &Heatmap {
        &self.heatmap
    }

    /// The pool mask at model resolution, built from the first frame of each source size.
    fn mask_for(&mut self, img: &RgbImage) -> Result<&[f32], MaskError> {
        let dims = img.dimensions();
        if self.mask.as_ref().is_none_or(|(d, _)| *d != dims) {
            let (w, h) = self.model.size();
            self.mask = Some((dims, self.pool.model_mask(img, w, h)?));
        }
        Ok(self.mask.as_ref().map(|m| m.1.as_slice()).unwrap_or(&[]))
    }

    /// Runs one frame through the pipeline.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Detection, DetectError> {
        let t0 = Instant::now();
        self.mask_for(img)?;
        let input = self.pre.run(img);
        let t1 = Instant::now();
        let recon = self.model.reconstruct(input)?;
        let t2 = Instant::now();
        let mask = self.mask.as_ref().map(|m| m.1.as_slice()).unwrap_or(&[]);
        self.heat.build_into(input, recon, mask, &mut self.heatmap);
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

/// One box as output records carry it (pixels rounded to 0.1).
#[derive(Clone, Debug, Serialize)]
pub struct BoxRecord {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
}

impl From<&BBox> for BoxRecord {
    fn from(b: &BBox) -> Self {
        let r = |v: f32| (v * 10.0).round() / 10.0;
        BoxRecord { x1: r(b.x1), y1: r(b.y1), x2: r(b.x2), y2: r(b.y2), score: (b.score * 1000.0).round() / 1000.0 }
    }
}

/// The JSON line `poolwatch detect` prints for an image.
#[derive(Clone, Debug, Serialize)]
pub struct ImageRecord {
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub boxes: Vec<BoxRecord>,
    pub ms: f64,
}

impl ImageRecord {
    pub fn new(image: String, d: &Detection) -> ImageRecord {
        ImageRecord {
            image,
            width: d.width,
            height: d.height,
            boxes: d.boxes.iter().map(BoxRecord::from).collect(),
            ms: (d.timings.total * 100.0).round() / 100.0,
        }
    }
}
