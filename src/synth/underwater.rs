//! The synthetic underwater venue: a camera below the surface looking along the lanes, like the
//! ietr-pool footage. The surface seen from below (ripples, moving glints, what it mirrors), the far
//! wall, the floor's lane lines in perspective with caustics, floating particles and slow light drift;
//! swimmers with skin, dark suits and caps, arms and kicking legs, trailing bubbles, splashes and
//! wake at the surface. The ground truth is the box of the *body* alone, never its bubbles or wake.
//! Everything is deterministic for a seed.

use super::{Texture, Truth, hsv, lerp3};
use crate::pipeline::boxes::BBox;
use crate::util::rng::Rng;
use image::RgbImage;

/// Seconds between two bubble emissions of a swimmer.
const BUBBLE_DT: f32 = 0.05;
/// How many emissions are still visible (their age is at most `BUBBLE_KEEP * BUBBLE_DT`).
const BUBBLE_KEEP: u64 = 36;

#[derive(Clone, Debug)]
struct Diver {
    /// Body length in pixels.
    len: f32,
    /// Depth line of the body's centre, pixels.
    depth: f32,
    /// Horizontal position at t = 0 and speed, pixels per second (the sign is the direction).
    x0: f32,
    speed: f32,
    skin: [f32; 3],
    suit: [f32; 3],
    cap: [f32; 3],
    stroke_hz: f32,
    phase: f32,
    /// Bubble emissions per stroke and how far they spread, in body lengths.
    bubbles: u32,
    spread: f32,
    seed: u64,
}

/// One underwater venue.
#[derive(Clone, Debug)]
pub struct Underwater {
    width: u32,
    height: u32,
    /// Static colour per pixel.
    base: Vec<[f32; 3]>,
    /// 0 = floor or wall, 1 = the surface seen from below, per pixel.
    surface: Vec<f32>,
    /// The line where the surface meets the far wall, per column (pixels).
    surface_y: Vec<f32>,
    wave: Texture,
    caustic: Texture,
    glint: Texture,
    foam: Texture,
    caustic_amp: f32,
    glint_amp: f32,
    drift: [f32; 3],
    noise: f32,
    particles: Vec<[f32; 5]>,
    divers: Vec<Diver>,
}

fn blend(c: &mut [f32; 3], to: [f32; 3], a: f32) {
    *c = lerp3(*c, to, a.clamp(0.0, 1.0));
}

impl Underwater {
    /// A venue for `seed`, `width` x `height` pixels, with a number of swimmers drawn from `swimmers`.
    pub fn new(seed: u64, width: u32, height: u32, swimmers: (u32, u32)) -> Underwater {
        let mut rng = Rng::fork(seed, 100);
        let (w, h) = (width as f32, height as f32);
        // Where the surface meets the far wall, with a tilt of the camera.
        let horizon = rng.range(0.3, 0.5) * h;
        let tilt = rng.range(-0.06, 0.06);
        let wall_h = rng.range(0.04, 0.1) * h;
        let light = rng.range(0.8, 1.1);
        let water = hsv(rng.range(188.0, 205.0), rng.range(0.55, 0.8), rng.range(0.65, 0.9) * light);
        let surface_c = hsv(rng.range(185.0, 200.0), rng.range(0.3, 0.6), rng.range(0.8, 1.0) * light);
        let wall_c = hsv(rng.range(200.0, 225.0), rng.range(0.6, 0.9), rng.range(0.35, 0.6) * light);
        let line_c = hsv(rng.range(215.0, 235.0), rng.range(0.6, 0.9), rng.range(0.25, 0.45));
        // Lane lines on the floor meet at a vanishing point on the horizon.
        let vx = rng.range(0.2, 0.8) * w;
        let lines = rng.int(3, 6);
        let spacing = rng.range(0.25, 0.45);
        let line_off = rng.range(-0.5, 0.5);
        let line_w = rng.range(0.012, 0.025);
        let tile = rng.range(0.01, 0.03);
        let n = (width * height) as usize;
        let (mut base, mut surface) = (vec![[0.0f32; 3]; n], vec![0.0f32; n]);
        let surface_y: Vec<f32> = (0..width).map(|x| horizon + tilt * (x as f32 - w / 2.0)).collect();
        for y in 0..height {
            for x in 0..width {
                let i = (y * width + x) as usize;
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let sy = surface_y[x as usize];
                base[i] = if fy < sy {
                    surface[i] = 1.0;
                    // Brighter towards the top (the light comes from above).
                    lerp3(surface_c, [235.0, 250.0, 255.0], (1.0 - fy / sy).powi(2) * 0.4)
                } else if fy < sy + wall_h {
                    let mut c = wall_c;
                    // The lane ends' targets: dark crosses on the wall.
                    let k = (fx - vx) / (w * 0.12);
                    if (k - k.round()).abs() < 0.08 && fy > sy + wall_h * 0.3 {
                        blend(&mut c, line_c, 0.7);
                    }
                    c
                } else {
                    // The floor: depth from the horizon, lines through the vanishing point.
                    let d = (fy - sy - wall_h).max(0.5) / h;
                    let slope = (fx - vx) / (fy - sy).max(1.0);
                    let lane = slope / (spacing * 4.0) + line_off;
                    let near_line = (lane - lane.round()).abs() * (spacing * 4.0) < line_w * 4.0 / (d * 6.0 + 0.3)
                        && lane.round().abs() <= lines as f32;
                    let mut c = lerp3(water, [200.0, 235.0, 245.0], (d * 1.6).min(0.6));
                    let gx = ((slope / tile).floor() as i64 + ((1.0 / d) / (tile * 40.0)).floor() as i64).rem_euclid(2);
                    if gx == 1 {
                        c = [c[0] * 0.96, c[1] * 0.97, c[2] * 0.98];
                    }
                    if near_line {
                        blend(&mut c, line_c, 0.8);
                    }
                    c
                };
            }
        }
        let wave = Texture::value_noise(&mut rng, &[(8, 1.0), (16, 0.6), (32, 0.3)]);
        let caustic = Texture::ridges(&Texture::value_noise(&mut rng, &[(16, 1.0), (32, 0.4)]), 8);
        let glint = Texture::ridges(&Texture::value_noise(&mut rng, &[(8, 1.0), (16, 0.5)]), 14);
        let foam = Texture::value_noise(&mut rng, &[(32, 1.0), (64, 0.6)]);
        let particles = (0..rng.int(20, 80))
            .map(|_| [rng.range(0.0, w), rng.range(horizon, h), rng.range(-4.0, 4.0), rng.range(-2.0, 2.0), rng.range(-1.0, 1.0)])
            .collect();

        let mut srng = Rng::fork(seed, 101);
        let count = srng.int(swimmers.0, swimmers.1);
        // Each swimmer in a lane of their own: the nearer the lane, the larger the swimmer and the lower
        // in the frame. Far lanes first, so nearer swimmers are drawn over them.
        let mut lanes: Vec<u32> = (0..6).collect();
        let mut near: Vec<f32> = (0..count.min(6))
            .map(|_| {
                let lane = lanes.swap_remove(srng.int(0, lanes.len() as u32 - 1) as usize);
                1.0 - lane as f32 * 0.13 - srng.range(0.0, 0.05)
            })
            .collect();
        near.sort_by(f32::total_cmp);
        let divers = near
            .into_iter()
            .enumerate()
            .map(|(k, near)| {
                let len = near * srng.range(0.4, 0.5) * w;
                let tone = srng.range(0.0, 1.0);
                let suits = [[15.0, 15.0, 20.0], [20.0, 25.0, 60.0], [90.0, 20.0, 30.0], [25.0, 25.0, 25.0]];
                let caps = [[20.0, 20.0, 25.0], [235.0, 235.0, 240.0], [210.0, 40.0, 40.0], [240.0, 200.0, 40.0], [40.0, 70.0, 180.0]];
                let dir = if srng.f32() < 0.5 { -1.0 } else { 1.0 };
                Diver {
                    len,
                    depth: horizon + (near - 0.3).max(0.0) * srng.range(0.3, 0.55) * (h - horizon),
                    x0: srng.range(-0.2, 1.2) * w,
                    speed: dir * srng.range(0.15, 0.35) * w,
                    skin: lerp3([225.0, 175.0, 145.0], [105.0, 70.0, 50.0], tone),
                    suit: suits[srng.int(0, suits.len() as u32 - 1) as usize],
                    cap: caps[srng.int(0, caps.len() as u32 - 1) as usize],
                    stroke_hz: srng.range(0.6, 1.0),
                    phase: srng.range(0.0, std::f32::consts::TAU),
                    bubbles: srng.int(4, 16),
                    spread: srng.range(0.04, 0.12),
                    seed: seed.wrapping_mul(131).wrapping_add(k as u64),
                }
            })
            .collect();
        Underwater {
            width,
            height,
            base,
            surface,
            surface_y,
            wave,
            caustic,
            glint,
            foam,
            caustic_amp: rng.range(0.05, 0.18),
            glint_amp: rng.range(0.3, 0.8),
            drift: [rng.range(0.0, 6.3), rng.range(0.03, 0.08), rng.range(0.01, 0.04)],
            noise: rng.range(1.5, 5.0),
            particles,
            divers,
        }
    }

    /// Renders the venue at time `t` seconds into `img` and returns the bodies' ground truth. `frame`
    /// seeds the sensor noise.
    pub fn render_into(&self, t: f32, frame: u64, img: &mut RgbImage) -> Vec<Truth> {
        if img.dimensions() != (self.width, self.height) {
            *img = RgbImage::new(self.width, self.height);
        }
        let (w, h) = (self.width as f32, self.height as f32);
        let tex = 256.0 / w.max(h);
        // Light drift over minutes: brightness and a shift of hue between recordings.
        let [dp, da, dt] = self.drift;
        let gain = 1.0 + da * (t / 300.0 + dp).sin();
        let tint = dt * (t / 420.0 + dp * 0.7).cos();
        let mut buf: Vec<[f32; 3]> = Vec::with_capacity(self.base.len());
        for y in 0..self.height {
            for x in 0..self.width {
                let i = (y * self.width + x) as usize;
                let (fx, fy) = (x as f32 * tex, y as f32 * tex);
                let mut c = self.base[i];
                if self.surface[i] > 0.0 {
                    // The surface from below: ripples stretched sideways, glints that move with them.
                    let sy = self.surface_y[x as usize] * tex;
                    let squash = 1.0 + 3.0 * (1.0 - (fy / sy.max(1.0))).max(0.0);
                    let r = 0.6 * self.wave.sample(fx * 0.5 + t * 4.0, fy * squash * 2.0 + t * 2.0)
                        + 0.4 * self.wave.sample(fx * 1.0 - t * 3.0, fy * squash * 3.0 - t * 1.5);
                    let g = self.glint.sample(fx * 0.6 + r * 6.0 + t * 5.0, fy * squash * 2.5 + t * 2.5);
                    let gain = 1.0 + 0.18 * r;
                    c = [c[0] * gain, c[1] * gain, c[2] * gain];
                    blend(&mut c, [255.0, 255.0, 250.0], g * self.glint_amp);
                } else {
                    let k = self.caustic.sample(fx * 1.5 + t * 2.0, fy * 3.0 - t * 1.2);
                    let add = k * self.caustic_amp * 255.0;
                    c = [c[0] + add, c[1] + add, c[2] + add * 0.8];
                }
                buf.push(c);
            }
        }
        for p in &self.particles {
            // Floating specks: slow drift, a little darker or lighter than the water.
            let px = (p[0] + p[2] * t).rem_euclid(w);
            let py = p[1] + 6.0 * (t * 0.3 + p[3]).sin();
            let r = 1.0 + p[4].abs() * 1.5;
            let to = if p[4] > 0.0 { [230.0, 240.0, 240.0] } else { [40.0, 60.0, 70.0] };
            self.disc(&mut buf, px, py, r, |c, a| blend(c, to, 0.5 * a));
        }
        // Which body each pixel shows, so a swimmer hidden behind a nearer one is boxed by what is seen.
        let mut owner = vec![0u8; buf.len()];
        let drawn: Vec<(u32, f32)> = self.divers.iter().enumerate().map(|(k, d)| self.draw_diver(k, d, t, &mut buf, &mut owner)).collect();
        let truth = self.visible_truth(&owner, &drawn);
        let mut noise = Rng::fork(frame, 8);
        for (px, c) in img.as_mut().chunks_exact_mut(3).zip(&buf) {
            let n = (noise.f32() - 0.5) * 2.0 * self.noise;
            let cc = [c[0] * gain * (1.0 + tint), c[1] * gain, c[2] * gain * (1.0 - tint)];
            for (o, ch) in px.iter_mut().zip(cc) {
                *o = (ch + n).clamp(0.0, 255.0) as u8;
            }
        }
        truth
    }

    /// Calls `f(colour, coverage)` on the pixels of a disc (anti-aliased edge).
    fn disc(&self, buf: &mut [[f32; 3]], cx: f32, cy: f32, r: f32, mut f: impl FnMut(&mut [f32; 3], f32)) {
        let (w, h) = (self.width as i64, self.height as i64);
        let (x0, x1) = (((cx - r - 1.0).floor() as i64).max(0), ((cx + r + 1.0).ceil() as i64).min(w - 1));
        let (y0, y1) = (((cy - r - 1.0).floor() as i64).max(0), ((cy + r + 1.0).ceil() as i64).min(h - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                let a = (r + 0.5 - d).clamp(0.0, 1.0);
                if a > 0.0 {
                    f(&mut buf[(y * w + x) as usize], a);
                }
            }
        }
    }

    /// Where a swimmer's centre is at time `t` (they cross the frame, turn beyond its edge, and come back).
    fn position(&self, d: &Diver, t: f32) -> (f32, f32) {
        let w = self.width as f32;
        let (lo, hi) = (-0.45 * w, 1.45 * w);
        let span = hi - lo;
        let p = (d.x0 - lo + d.speed * t).rem_euclid(2.0 * span);
        if p < span { (lo + p, d.speed.signum()) } else { (lo + 2.0 * span - p, -d.speed.signum()) }
    }

    /// The box of the pixels each body shows in the finished frame. A body is in view when at least 24
    /// of its pixels, 6 x 4 of extent and 30 % of what was drawn of it show (a sliver at the frame's edge
    /// counts; one almost hidden behind a nearer swimmer does not).
    fn visible_truth(&self, owner: &[u8], drawn: &[(u32, f32)]) -> Vec<Truth> {
        let mut ext = vec![(u32::MAX, u32::MAX, 0u32, 0u32, 0u32); drawn.len()];
        for (i, &o) in owner.iter().enumerate().filter(|(_, o)| **o > 0) {
            let (x, y) = (i as u32 % self.width, i as u32 / self.width);
            let e = &mut ext[o as usize - 1];
            *e = (e.0.min(x), e.1.min(y), e.2.max(x + 1), e.3.max(y + 1), e.4 + 1);
        }
        let w = self.width as f32;
        ext.iter()
            .zip(drawn)
            .enumerate()
            .filter(|(_, ((x1, y1, x2, y2, seen), (count, _)))| {
                *seen >= 24 && x2.saturating_sub(*x1) >= 6 && y2.saturating_sub(*y1) >= 4 && *seen as f32 >= 0.3 * *count as f32
            })
            .map(|(k, (&(x1, y1, x2, y2, _), &(_, cx)))| Truth {
                bbox: BBox { x1: x1 as f32, y1: y1 as f32, x2: x2 as f32, y2: y2 as f32, score: 1.0 },
                lane: k as u32 + 1,
                distance_m: cx / w * 25.0,
            })
            .collect()
    }

    /// Draws swimmer `k` (bubbles and wake, then the body, marking its pixels in `owner`); how many
    /// body pixels it drew and where its centre is.
    fn draw_diver(&self, k: usize, d: &Diver, t: f32, buf: &mut [[f32; 3]], owner: &mut [u8]) -> (u32, f32) {
        let (w, h) = (self.width as f32, self.height as f32);
        let (cx, dir) = self.position(d, t);
        let l = d.len;
        let water = [70.0, 150.0, 180.0];
        // Seen through water: colours pulled towards the water's, more so deeper.
        let murk = 0.2 + 0.3 * ((d.depth - self.surface_y[0]) / h).clamp(0.0, 1.0);
        let skin = lerp3(d.skin, water, murk);
        let suit = lerp3(d.suit, water, murk * 0.6);
        let cap = lerp3(d.cap, water, murk * 0.6);
        let phase = d.phase + t * d.stroke_hz * std::f32::consts::TAU;
        // Body points in image space: a along the swimming direction, b downwards.
        let at = |a: f32, b: f32| (cx + dir * a * l, d.depth + b * l);

        // Bubbles and wake first: the body is drawn over them.
        let now = (t / BUBBLE_DT).floor() as i64;
        for age_k in 0..BUBBLE_KEEP as i64 {
            let i = now - age_k;
            let te = i as f32 * BUBBLE_DT;
            let age = t - te;
            if age < 0.0 {
                continue;
            }
            let (ex, edir) = self.position(d, te);
            let mut r = Rng::fork(d.seed, i as u64);
            let phase_e = d.phase + te * d.stroke_hz * std::f32::consts::TAU;
            // Bubbles leave the hands (after the catch) and the feet, and rise as they age.
            let emit = d.bubbles as f32 * (0.5 + 0.5 * phase_e.sin().abs());
            for _ in 0..emit as u32 {
                let from_feet = r.f32() < 0.55;
                let (a, b) = if from_feet { (-0.5, r.range(-0.05, 0.05)) } else { (0.45 + r.range(-0.1, 0.1), r.range(-0.12, 0.05)) };
                let bx = ex + edir * a * l + r.normal() * d.spread * l * (1.0 + age * 2.0);
                let by = d.depth + b * l + r.normal() * d.spread * l * 0.5 - age * r.range(20.0, 60.0) * (h / 480.0);
                let br = r.range(0.8, 3.5) * (w / 640.0).max(0.5);
                let fade = 1.0 - age / (BUBBLE_KEEP as f32 * BUBBLE_DT);
                if by < self.surface_y[(bx.clamp(0.0, w - 1.0)) as usize] {
                    continue;
                }
                self.disc(buf, bx, by, br, |c, a| blend(c, [245.0, 250.0, 255.0], 0.85 * a * fade));
            }
        }
        // Wake at the surface above the swimmer: foam and the surface's mirror of the body.
        let near = ((d.depth - self.surface_y[cx.clamp(0.0, w - 1.0) as usize]) / h).clamp(0.0, 1.0);
        let wake_a = (1.0 - near * 2.5).clamp(0.0, 1.0);
        if wake_a > 0.0 {
            let (x0, x1) = ((cx - 0.9 * l).max(0.0) as u32, ((cx + 0.6 * l).min(w)) as u32);
            for x in x0..x1 {
                let sy = self.surface_y[x as usize];
                let y0 = (sy - 0.25 * l).max(0.0) as u32;
                for y in y0..(sy.max(0.0) as u32).min(self.height) {
                    let i = (y * self.width + x) as usize;
                    let behind = ((x as f32 - cx) * dir / l + 0.15).clamp(-1.0, 0.6);
                    let f = self.foam.sample(x as f32 * 0.7 - t * 20.0 * dir, y as f32 * 0.9);
                    let fall = 1.0 - ((sy - y as f32) / (0.25 * l)).clamp(0.0, 1.0);
                    if f > 0.0 {
                        blend(&mut buf[i], [250.0, 250.0, 250.0], wake_a * fall * f * (0.6 - behind * 0.5));
                    }
                    // The surface mirrors the swimmer faintly.
                    if (x as f32 - cx).abs() < 0.4 * l && sy - (y as f32) < 0.12 * l {
                        blend(&mut buf[i], skin, wake_a * 0.3);
                    }
                }
            }
        }

        // The body, each pixel marked as this swimmer's.
        let mut seen = 0u32;
        let mark = k as u8 + 1;
        let mut part = |buf: &mut [[f32; 3]], (ax, ay): (f32, f32), (bx, by): (f32, f32), r: f32, col: [f32; 3]| {
            let r = r * l;
            let (lo_x, hi_x) = ((ax.min(bx) - r).floor() as i64, (ax.max(bx) + r).ceil() as i64);
            let (lo_y, hi_y) = ((ay.min(by) - r).floor() as i64, (ay.max(by) + r).ceil() as i64);
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = (dx * dx + dy * dy).max(1e-6);
            for y in lo_y.max(0)..=hi_y.min(self.height as i64 - 1) {
                for x in lo_x.max(0)..=hi_x.min(self.width as i64 - 1) {
                    let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                    let q = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
                    let dist = ((px - ax - q * dx).powi(2) + (py - ay - q * dy).powi(2)).sqrt();
                    if dist < r {
                        // Round shading: lighter on top, darker below.
                        let shade = 1.0 + 0.25 * (ay + by - 2.0 * py) / (2.0 * r + 1.0);
                        let i = (y * self.width as i64 + x) as usize;
                        buf[i] = [col[0] * shade, col[1] * shade, col[2] * shade];
                        seen += u32::from(owner[i] != mark);
                        owner[i] = mark;
                    }
                }
            }
        };
        let kick = (phase * 2.0).sin() * 0.05;
        // Legs (behind), torso, suit, head, then the arms round the shoulder.
        part(buf, at(-0.08, 0.015), at(-0.5, 0.02 + kick), 0.05, skin);
        part(buf, at(-0.08, -0.015), at(-0.5, -0.02 - kick), 0.05, lerp3(skin, [0.0, 0.0, 0.0], 0.1));
        part(buf, at(0.02, 0.0), at(0.3, 0.0), 0.1, skin);
        part(buf, at(-0.12, 0.0), at(0.04, 0.0), 0.1, suit);
        part(buf, at(0.41, -0.01), at(0.44, -0.01), 0.07, cap);
        for arm in 0..2 {
            let th = phase + arm as f32 * std::f32::consts::PI;
            // The hand circles the shoulder: forwards above the head, down, back along the body, up.
            let (ha, hb) = (0.3 + 0.32 * th.cos(), 0.3 * th.sin());
            let col = if arm == 0 { skin } else { lerp3(skin, [0.0, 0.0, 0.0], 0.15) };
            part(buf, at(0.3, 0.0), at(ha, hb), 0.04, col);
        }
        (seen, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_frames_and_truth() {
        let a = Underwater::new(5, 160, 120, (1, 2));
        let (mut ia, mut ib) = (RgbImage::new(1, 1), RgbImage::new(1, 1));
        let ta = a.render_into(2.0, 1, &mut ia);
        let tb = Underwater::new(5, 160, 120, (1, 2)).render_into(2.0, 1, &mut ib);
        assert_eq!(ia.as_raw(), ib.as_raw());
        assert_eq!(ta, tb);
    }

    #[test]
    fn the_truth_boxes_the_body_and_the_bubbles_lie_outside_it() {
        // Find a frame with a swimmer in full view, then compare it with the empty venue.
        for seed in 1..40 {
            let scene = Underwater::new(seed, 320, 240, (1, 1));
            let empty = Underwater::new(seed, 320, 240, (0, 0));
            for step in 0..20 {
                let t = step as f32 * 0.7;
                let (mut img, mut bg) = (RgbImage::new(1, 1), RgbImage::new(1, 1));
                let truth = scene.render_into(t, 3, &mut img);
                let none = empty.render_into(t, 3, &mut bg);
                assert!(none.is_empty());
                let [tr] = truth.as_slice() else { continue };
                let b = tr.bbox;
                assert!(b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= 320.0 && b.y2 <= 240.0);
                // Pixels changed inside and outside the body box: bubbles and wake are real change.
                let (mut inside, mut outside) = (0, 0);
                for (x, y, p) in img.enumerate_pixels() {
                    if p != bg.get_pixel(x, y) {
                        let i = (x as f32) >= b.x1 && (x as f32) < b.x2 && (y as f32) >= b.y1 && (y as f32) < b.y2;
                        if i { inside += 1 } else { outside += 1 }
                    }
                }
                if b.area() > 400.0 && outside > 20 {
                    assert!(inside as f32 > 0.3 * b.area(), "the body fills its box: {inside} of {}", b.area());
                    return;
                }
            }
        }
        panic!("no venue showed a swimmer with bubbles outside its box");
    }

    #[test]
    fn a_swimmer_is_boxed_by_what_shows_and_one_mostly_hidden_is_not_in_view() {
        let scene = Underwater::new(1, 40, 30, (0, 0));
        let mut owner = vec![0u8; 40 * 30];
        // Swimmer 1: 100 pixels drawn, 40 still showing (a 10x4 strip); swimmer 2: 200 drawn, 50 showing
        // (10x5), under the 30 %.
        for y in 2..6 {
            for x in 5..15 {
                owner[y * 40 + x] = 1;
            }
        }
        for y in 20..25 {
            for x in 20..30 {
                owner[y * 40 + x] = 2;
            }
        }
        let truth = scene.visible_truth(&owner, &[(100, 10.0), (200, 20.0)]);
        assert_eq!(truth.len(), 1);
        assert_eq!(truth[0].bbox, BBox { x1: 5.0, y1: 2.0, x2: 15.0, y2: 6.0, score: 1.0 });
        assert_eq!(truth[0].lane, 1);
    }

    #[test]
    fn the_light_drifts_between_recordings() {
        let scene = Underwater::new(9, 96, 72, (0, 0));
        let (mut a, mut b) = (RgbImage::new(1, 1), RgbImage::new(1, 1));
        scene.render_into(0.0, 1, &mut a);
        scene.render_into(600.0, 1, &mut b);
        let mean = |i: &RgbImage| i.as_raw().iter().map(|&v| v as f64).sum::<f64>() / i.as_raw().len() as f64;
        assert!((mean(&a) - mean(&b)).abs() > 1.0, "{} vs {}", mean(&a), mean(&b));
    }
}
