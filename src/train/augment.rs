//! Augmentation for training, as the seed: random crop, rotation, horizontal and vertical flip,
//! brightness and saturation, blur. Geometric changes are applied to the pool mask too. Deterministic
//! for a given random stream.

use crate::util::rng::Rng;
use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentSettings {
    /// Smallest crop side as a fraction of the frame (1 = no crop).
    pub min_crop: f32,
    /// Largest rotation, degrees either way.
    pub rotate_deg: f32,
    pub hflip: f32,
    pub vflip: f32,
    /// Largest brightness change, as a fraction either way.
    pub brightness: f32,
    /// Largest saturation change, as a fraction either way.
    pub saturation: f32,
    /// Probability of a light Gaussian blur.
    pub blur: f32,
}

impl Default for AugmentSettings {
    fn default() -> Self {
        AugmentSettings { min_crop: 0.85, rotate_deg: 4.0, hflip: 0.5, vflip: 0.1, brightness: 0.2, saturation: 0.25, blur: 0.2 }
    }
}

impl AugmentSettings {
    /// No augmentation at all.
    pub fn none() -> Self {
        AugmentSettings { min_crop: 1.0, rotate_deg: 0.0, hflip: 0.0, vflip: 0.0, brightness: 0.0, saturation: 0.0, blur: 0.0 }
    }

    /// These settings with `KEY=VALUE[,KEY=VALUE...]` applied, keys named as the fields
    /// (`rotate_deg=8,min_crop=0.7`). Each value is checked against its field's range.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, String> {
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| format!("'{item}' is not KEY=VALUE"))?;
            let (key, value) = (key.trim(), value.trim());
            let value: f32 = value.parse().map_err(|_| format!("{key}: '{value}' is not a number"))?;
            let (field, range) = match key {
                "min_crop" => (&mut self.min_crop, 0.1..=1.0),
                "rotate_deg" => (&mut self.rotate_deg, 0.0..=45.0),
                "hflip" => (&mut self.hflip, 0.0..=1.0),
                "vflip" => (&mut self.vflip, 0.0..=1.0),
                "brightness" => (&mut self.brightness, 0.0..=0.9),
                "saturation" => (&mut self.saturation, 0.0..=1.0),
                "blur" => (&mut self.blur, 0.0..=1.0),
                other => {
                    return Err(format!(
                        "unknown augmentation '{other}' (min_crop, rotate_deg, hflip, vflip, brightness, saturation, blur)"
                    ));
                }
            };
            if !range.contains(&value) {
                return Err(format!("{key} = {value} is outside {}..={}", range.start(), range.end()));
            }
            *field = value;
        }
        Ok(self)
    }
}

/// One random variant of a frame and its mask, at the frame's own size.
pub fn augment(img: &RgbImage, mask: &GrayImage, s: &AugmentSettings, rng: &mut Rng) -> (RgbImage, GrayImage) {
    let (w, h) = img.dimensions();
    let (wf, hf) = (w as f32, h as f32);
    let scale = rng.range(s.min_crop.min(1.0), 1.0);
    let (cw, ch) = (wf * scale, hf * scale);
    let (cx, cy) = (rng.range(cw / 2.0, wf - cw / 2.0 + 1e-3), rng.range(ch / 2.0, hf - ch / 2.0 + 1e-3));
    let angle = rng.range(-s.rotate_deg, s.rotate_deg).to_radians();
    let (hflip, vflip) = (rng.f32() < s.hflip, rng.f32() < s.vflip);
    let brightness = 1.0 + rng.range(-s.brightness, s.brightness);
    let saturation = 1.0 + rng.range(-s.saturation, s.saturation);
    let blur = rng.f32() < s.blur;
    let (sin, cos) = angle.sin_cos();
    let mut out = RgbImage::new(w, h);
    let mut out_mask = GrayImage::new(w, h);
    let src = img.as_raw();
    for y in 0..h {
        for x in 0..w {
            // Output pixel -> centred, flipped, scaled, rotated -> source pixel.
            let mut u = (x as f32 + 0.5) / wf - 0.5;
            let mut v = (y as f32 + 0.5) / hf - 0.5;
            if hflip {
                u = -u;
            }
            if vflip {
                v = -v;
            }
            let (px, py) = (u * cw, v * ch);
            let sx = (cx + px * cos - py * sin - 0.5).clamp(0.0, wf - 1.0);
            let sy = (cy + px * sin + py * cos - 0.5).clamp(0.0, hf - 1.0);
            let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
            let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
            let (tx, ty) = (sx - x0 as f32, sy - y0 as f32);
            let at = |xx: u32, yy: u32, c: usize| src[((yy * w + xx) * 3) as usize + c] as f32;
            let mut rgb = [0.0f32; 3];
            for (c, v) in rgb.iter_mut().enumerate() {
                let a = at(x0, y0, c) * (1.0 - tx) + at(x1, y0, c) * tx;
                let b = at(x0, y1, c) * (1.0 - tx) + at(x1, y1, c) * tx;
                *v = a * (1.0 - ty) + b * ty;
            }
            let luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            let p = rgb.map(|c| ((luma + (c - luma) * saturation) * brightness).clamp(0.0, 255.0) as u8);
            out.put_pixel(x, y, image::Rgb(p));
            out_mask.put_pixel(x, y, *mask.get_pixel((sx + 0.5) as u32 % w, (sy + 0.5) as u32 % h));
        }
    }
    if blur {
        out = image::imageops::blur(&out, rng.range(0.5, 1.2));
    }
    (out, out_mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> (RgbImage, GrayImage) {
        let img = RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
        let mask = GrayImage::from_fn(64, 48, |x, _| image::Luma([if x < 32 { 255 } else { 0 }]));
        (img, mask)
    }

    #[test]
    fn overrides_set_named_fields_and_reject_bad_ones() {
        let s = AugmentSettings::default().with_overrides("rotate_deg=8, min_crop=0.7").unwrap();
        assert_eq!((s.rotate_deg, s.min_crop), (8.0, 0.7));
        assert_eq!(s.hflip, AugmentSettings::default().hflip);
        assert_eq!(AugmentSettings::default().with_overrides("").unwrap(), AugmentSettings::default());
        let e = AugmentSettings::default().with_overrides("spin=3").unwrap_err();
        assert!(e.contains("unknown augmentation 'spin'"), "{e}");
        assert!(AugmentSettings::default().with_overrides("hflip=2").unwrap_err().contains("outside"));
        assert!(AugmentSettings::default().with_overrides("blur").unwrap_err().contains("KEY=VALUE"));
        assert!(AugmentSettings::default().with_overrides("blur=x").unwrap_err().contains("not a number"));
    }

    #[test]
    fn no_augmentation_is_identity() {
        let (img, mask) = frame();
        let (a, m) = augment(&img, &mask, &AugmentSettings::none(), &mut Rng::new(1));
        assert_eq!(a.as_raw(), img.as_raw());
        assert_eq!(m.as_raw(), mask.as_raw());
    }

    #[test]
    fn flip_moves_image_and_mask_together() {
        let (img, mask) = frame();
        let s = AugmentSettings { hflip: 1.0, ..AugmentSettings::none() };
        let (a, m) = augment(&img, &mask, &s, &mut Rng::new(1));
        assert_eq!(a.get_pixel(0, 10), img.get_pixel(63, 10));
        assert_eq!(m.get_pixel(0, 10)[0], 0);
        assert_eq!(m.get_pixel(63, 10)[0], 255);
    }

    #[test]
    fn deterministic_per_stream_and_varied_across() {
        let (img, mask) = frame();
        let s = AugmentSettings::default();
        let a = augment(&img, &mask, &s, &mut Rng::new(9)).0;
        let b = augment(&img, &mask, &s, &mut Rng::new(9)).0;
        let c = augment(&img, &mask, &s, &mut Rng::new(10)).0;
        assert_eq!(a.as_raw(), b.as_raw());
        assert_ne!(a.as_raw(), c.as_raw());
    }

    #[test]
    fn brightness_scales_pixels() {
        let img = RgbImage::from_pixel(8, 8, image::Rgb([100, 100, 100]));
        let mask = GrayImage::from_pixel(8, 8, image::Luma([255]));
        let s = AugmentSettings { brightness: 0.5, ..AugmentSettings::none() };
        let (a, _) = augment(&img, &mask, &s, &mut Rng::new(3));
        let v = a.get_pixel(4, 4)[0];
        assert!(v != 100 && (50..=150).contains(&v));
        assert!(a.pixels().all(|p| p[0] == v && p[1] == v));
    }
}
