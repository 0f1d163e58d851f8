//! The synthetic pool camera: procedural above-water pool scenes like competition footage (water with
//! waves and caustics, lane ropes, floor stripes, pool edge, deck and stands, varied colour, light and
//! viewpoint, glare) with swimmers (cap, arms, body, splash) whose boxes are known exactly.
//! Everything is deterministic for a seed. It is the demo's embedded default and the tests' ground truth.
//! [`Venue`] is either this overhead camera ([`Scene`]) or the underwater one ([`underwater`]), for
//! `poolwatch synth --camera`.

use crate::pipeline::boxes::BBox;
use crate::pipeline::geometry::Homography;
use image::RgbImage;
use crate::util::rng::Rng;
use serde::{Deserialize, Serialize};

pub mod underwater;
pub use underwater::Underwater;

const LANE_W: f32 = 2.5;
const TEX: usize = 256;

/// One swimmer's ground truth in a rendered frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    pub bbox: BBox,
    /// Lane number, 1 = nearest the camera.
    pub lane: u32,
    /// Head position along the pool, metres from the left wall.
    pub distance_m: f32,
}

/// A tileable scalar texture in [-1,1] (or [0,1] for caustics), sampled with wrap-around.
#[derive(Clone, Debug)]
struct Texture(Box<[f32; TEX * TEX]>);

impl Texture {
    /// Fractal value noise: octaves of smoothly interpolated random lattices.
    fn value_noise(rng: &mut Rng, octaves: &[(usize, f32)]) -> Texture {
        let mut t = vec![0.0f32; TEX * TEX];
        for &(cells, amp) in octaves {
            let lattice: Vec<f32> = (0..cells * cells).map(|_| rng.range(-1.0, 1.0)).collect();
            let step = TEX as f32 / cells as f32;
            for y in 0..TEX {
                for x in 0..TEX {
                    let (fx, fy) = (x as f32 / step, y as f32 / step);
                    let (x0, y0) = (fx.floor() as usize % cells, fy.floor() as usize % cells);
                    let (x1, y1) = ((x0 + 1) % cells, (y0 + 1) % cells);
                    let s = |v: f32| v * v * (3.0 - 2.0 * v);
                    let (tx, ty) = (s(fx.fract()), s(fy.fract()));
                    let a = lattice[y0 * cells + x0] * (1.0 - tx) + lattice[y0 * cells + x1] * tx;
                    let b = lattice[y1 * cells + x0] * (1.0 - tx) + lattice[y1 * cells + x1] * tx;
                    t[y * TEX + x] += amp * (a * (1.0 - ty) + b * ty);
                }
            }
        }
        let max = t.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        t.iter_mut().for_each(|v| *v /= max);
        Texture(t.into_boxed_slice().try_into().expect("TEX x TEX values"))
    }

    /// Thin bright ridges (caustic network) from a noise texture.
    fn ridges(noise: &Texture, sharpness: i32) -> Texture {
        let mut t = noise.0.clone();
        t.iter_mut().for_each(|v| *v = (1.0 - v.abs()).powi(sharpness));
        Texture(t)
    }

    #[inline(always)]
    fn sample(&self, x: f32, y: f32) -> f32 {
        let ((x0, xf), (y0, yf)) = (floor(x), floor(y));
        let (tx, ty) = (x - xf, y - yf);
        let m = TEX as i64 - 1;
        let (xi, yi) = (x0 & m, y0 & m);
        let (xj, yj) = ((xi + 1) & m, (yi + 1) & m);
        // The mask keeps the index provably in range, so the look-ups need no bounds checks.
        let at = |x: i64, y: i64| self.0[(y as usize * TEX + x as usize) & (TEX * TEX - 1)];
        let a = at(xi, yi) * (1.0 - tx) + at(xj, yi) * tx;
        let b = at(xi, yj) * (1.0 - tx) + at(xj, yj) * tx;
        a * (1.0 - ty) + b * ty
    }
}

/// Eight bilinear samples of textures at once, AVX2 (gathers): exactly [`Texture::sample`]'s arithmetic,
/// operation for operation, so the pixels are the same bit for bit.
#[cfg(target_arch = "x86_64")]
mod sample8 {
    use super::TEX;
    use std::arch::x86_64::*;

    /// `floor(x)` as integers and floats, as [`super::floor`] computes it: truncate, then step down
    /// where the truncation went up (negative fractions). Exact for |x| < 2^24, as there.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn floor8(x: __m256) -> (__m256i, __m256) {
        let i = _mm256_cvttps_epi32(x);
        // All ones (-1) in the lanes where the truncation is above x.
        let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_cvtepi32_ps(i), x));
        let i = _mm256_add_epi32(i, up);
        (i, _mm256_cvtepi32_ps(i))
    }

    /// Texture values at `(x, y)` (texel coordinates, wrapped), eight at a time.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub fn sample(tex: &[f32; TEX * TEX], x: __m256, y: __m256) -> __m256 {
        let ((x0, xf), (y0, yf)) = (floor8(x), floor8(y));
        let (tx, ty) = (_mm256_sub_ps(x, xf), _mm256_sub_ps(y, yf));
        let m = _mm256_set1_epi32(TEX as i32 - 1);
        let one = _mm256_set1_epi32(1);
        let (xi, yi) = (_mm256_and_si256(x0, m), _mm256_and_si256(y0, m));
        let (xj, yj) = (_mm256_and_si256(_mm256_add_epi32(xi, one), m), _mm256_and_si256(_mm256_add_epi32(yi, one), m));
        let (ri, rj) = (_mm256_slli_epi32::<8>(yi), _mm256_slli_epi32::<8>(yj));
        const _: () = assert!(TEX == 256, "the row shift is log2(TEX)");
        let at = |row: __m256i, col: __m256i| {
            // SAFETY: row = y * 256 and col = x with x and y masked to 0..256, so every index is below
            // TEX * TEX, the length of `tex`; the gather reads only those eight f32s.
            unsafe { _mm256_i32gather_ps::<4>(tex.as_ptr(), _mm256_or_si256(row, col)) }
        };
        let onev = _mm256_set1_ps(1.0);
        let (ux, uy) = (_mm256_sub_ps(onev, tx), _mm256_sub_ps(onev, ty));
        let a = _mm256_add_ps(_mm256_mul_ps(at(ri, xi), ux), _mm256_mul_ps(at(ri, xj), tx));
        let b = _mm256_add_ps(_mm256_mul_ps(at(rj, xi), ux), _mm256_mul_ps(at(rj, xj), tx));
        _mm256_add_ps(_mm256_mul_ps(a, uy), _mm256_mul_ps(b, ty))
    }
}

/// `x.floor()` as an integer and as a float, without the libm call that baseline x86-64 makes of
/// `f32::floor` (the renderer takes six a pixel). Exact for |x| < 2^24, which texture coordinates are.
#[inline(always)]
fn floor(x: f32) -> (i64, f32) {
    let i = x as i64;
    let i = if i as f32 > x { i - 1 } else { i };
    (i, i as f32)
}

/// A swimmer's fixed traits; the position follows from time.
#[derive(Clone, Debug)]
struct Swimmer {
    lane: u32,
    start: f32,
    speed: f32,
    cap: [f32; 3],
    skin: [f32; 3],
    stroke_hz: f32,
    phase: f32,
    /// Stops and floats from this time (seconds) for this long, then swims on.
    stop: Option<(f32, f32)>,
}

impl Swimmer {
    /// The time the swimmer's position and strokes follow: the clock, less the time spent stopped.
    fn swim_t(&self, t: f32) -> f32 {
        match self.stop {
            Some((from, len)) if t >= from => t - (t - from).min(len),
            _ => t,
        }
    }

    fn stopped_at(&self, t: f32) -> bool {
        self.stop.is_some_and(|(from, len)| t >= from && t < from + len)
    }
}

/// One synthetic venue: camera placement, pool, light, and its swimmers.
#[derive(Clone, Debug)]
pub struct Scene {
    width: u32,
    height: u32,
    length: f32,
    lanes: u32,
    to_image: Homography,
    to_pool: Homography,
    /// Static colour per pixel (0..255).
    base: Vec<[f32; 3]>,
    /// How much waves, caustics and glare show at each pixel (0 off the water).
    water: Vec<f32>,
    /// Pool coordinates per pixel (metres), for the animated layers.
    pool_uv: Vec<[f32; 2]>,
    wave: Texture,
    caustic: Texture,
    foam: Texture,
    wave_amp: f32,
    caustic_amp: f32,
    glare: [f32; 4],
    noise: f32,
    swimmers: Vec<Swimmer>,
    corners: [[f64; 2]; 4],
}

/// The swimmers of a scene: how many (from `range`), in which lanes (one each), where they start and how
/// fast they swim, from `seed`.
fn draw_swimmers(seed: u64, range: (u32, u32), lanes: u32, length: f32) -> Vec<Swimmer> {
    let mut srng = Rng::fork(seed, 1);
    let count = srng.int(range.0, range.1).min(lanes);
    let mut free: Vec<u32> = (1..=lanes).collect();
    let caps = [[220.0, 30.0, 30.0], [240.0, 220.0, 40.0], [245.0, 245.0, 245.0], [20.0, 20.0, 25.0], [240.0, 120.0, 20.0], [200.0, 40.0, 160.0], [40.0, 200.0, 60.0]];
    (0..count)
        .map(|_| {
            let lane = free.swap_remove(srng.int(0, free.len() as u32 - 1) as usize);
            let tone = srng.range(0.0, 1.0);
            Swimmer {
                lane,
                start: srng.range(0.0, 2.0 * (length - 2.0)),
                speed: srng.range(1.1, 2.0),
                cap: caps[srng.int(0, caps.len() as u32 - 1) as usize],
                skin: lerp3([235.0, 190.0, 160.0], [110.0, 70.0, 50.0], tone),
                stroke_hz: srng.range(0.7, 1.0),
                phase: srng.range(0.0, std::f32::consts::TAU),
                stop: None,
            }
        })
        .collect()
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let c = v * s;
    let hp = (h / 60.0).rem_euclid(6.0);
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

impl Scene {
    /// A venue for `seed`, `width` x `height` pixels, with a number of swimmers drawn from `swimmers`.
    pub fn new(seed: u64, width: u32, height: u32, swimmers: (u32, u32)) -> Scene {
        let mut rng = Rng::fork(seed, 0);
        let (w, h) = (width as f64, height as f64);
        let length = if rng.f32() < 0.5 { 25.0 } else { 50.0 };
        let lanes = rng.int(6, 10);
        let pool_w = lanes as f32 * LANE_W;
        let tilt = rng.range(-0.04, 0.04) as f64 * h;
        let yb = rng.range(0.9, 1.1) as f64 * h;
        let yt = rng.range(0.14, 0.32) as f64 * h;
        // A camera in the stands sees the near side large and part of the pool's length.
        let corners = [
            [rng.range(-0.55, -0.05) as f64 * w, yb],
            [rng.range(1.05, 1.55) as f64 * w, yb + tilt],
            [rng.range(0.8, 1.05) as f64 * w, yt + tilt * 0.6],
            [rng.range(-0.05, 0.2) as f64 * w, yt],
        ];
        let pool = [[0.0, 0.0], [length as f64, 0.0], [length as f64, pool_w as f64], [0.0, pool_w as f64]];
        let to_image = Homography::from_points(&pool, &corners).unwrap_or(Homography::IDENTITY);
        let to_pool = to_image.inverse().unwrap_or(Homography::IDENTITY);

        let light = rng.range(0.75, 1.15);
        let water_near = hsv(rng.range(182.0, 205.0), rng.range(0.45, 0.8), rng.range(0.6, 0.85) * light);
        let water_far = lerp3(water_near, hsv(rng.range(195.0, 215.0), 0.7, 0.45 * light), rng.range(0.2, 0.6));
        let stripe = hsv(rng.range(210.0, 240.0), rng.range(0.3, 0.8), rng.range(0.1, 0.3));
        let rope_palettes = [
            [[200.0, 30.0, 30.0], [240.0, 240.0, 240.0], [30.0, 60.0, 200.0]],
            [[220.0, 200.0, 30.0], [30.0, 140.0, 60.0], [30.0, 60.0, 200.0]],
            [[220.0, 40.0, 40.0], [230.0, 200.0, 40.0], [40.0, 80.0, 200.0]],
        ];
        let ropes = rope_palettes[rng.int(0, 2) as usize];
        let deck = hsv(rng.range(20.0, 45.0), rng.range(0.05, 0.3), rng.range(0.55, 0.85) * light);
        let coping = hsv(0.0, 0.0, rng.range(0.8, 0.95) * light);
        let stands_seed = rng.next_u64();

        let wave = Texture::value_noise(&mut rng, &[(8, 1.0), (16, 0.5), (32, 0.25)]);
        let caustic = Texture::ridges(&Texture::value_noise(&mut rng, &[(16, 1.0), (32, 0.4)]), 8);
        let foam = Texture::value_noise(&mut rng, &[(32, 1.0), (64, 0.6)]);
        let glare = [rng.range(0.2, 0.8) * length, rng.range(0.4, 1.0) * pool_w, rng.range(3.0, 8.0), rng.range(0.0, 0.5)];

        let n = (width * height) as usize;
        let mut base = vec![[0.0f32; 3]; n];
        let mut water = vec![0.0f32; n];
        let mut pool_uv = vec![[0.0f32; 2]; n];
        for y in 0..height {
            for x in 0..width {
                let i = (y * width + x) as usize;
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let m = &to_pool.0;
                let wz = m[6] * px + m[7] * py + m[8];
                let (u, v) = to_pool.apply(px, py);
                let (u2, v2) = to_pool.apply(px, py + 1.0);
                let foot = ((u2 - u).hypot(v2 - v) as f32).max(1e-3);
                let (u, v) = (u as f32, v as f32);
                pool_uv[i] = [u, v];
                let far_side = wz <= 0.0 || v > pool_w + 2.5;
                base[i] = if far_side {
                    // Stands: blocks of spectators' colours above the far deck.
                    let cell = (x / 7) as u64 * 7919 + (y / 9) as u64 * 104_729;
                    let mut r = Rng::fork(stands_seed, cell);
                    let c = hsv(r.range(0.0, 360.0), r.range(0.1, 0.7), r.range(0.15, 0.6) * light);
                    lerp3(c, [60.0, 60.0, 70.0], 0.3)
                } else if (0.0..length).contains(&u) && (0.0..pool_w).contains(&v) {
                    water[i] = 1.0;
                    let mut c = lerp3(water_near, water_far, v / pool_w);
                    let lane_pos = v / LANE_W;
                    let lane_c = (lane_pos.floor() + 0.5) * LANE_W;
                    let on_stripe = ((v - lane_c).abs() < 0.13 && (2.0..length - 2.0).contains(&u))
                        || (((u - 2.0).abs() < 0.13 || (u - length + 2.0).abs() < 0.13) && (v - lane_c).abs() < 0.5);
                    if on_stripe {
                        c = lerp3(c, stripe, 0.55);
                    }
                    // Lane ropes: floats of 0.12 m on the lines between lanes, anti-aliased.
                    let rope_v = (lane_pos.round() * LANE_W - v).abs();
                    let half = 0.06f32.max(foot * 0.5);
                    if lane_pos.round() >= 1.0 && lane_pos.round() < lanes as f32 && rope_v < half {
                        let k = (u / 0.11).floor() as i64;
                        let col = if u < 5.0 || u > length - 5.0 { ropes[0] } else { ropes[1 + (k.rem_euclid(2)) as usize] };
                        let alpha = (0.12 / (2.0 * half)).min(1.0);
                        water[i] = 1.0 - alpha;
                        c = lerp3(c, col, alpha);
                    }
                    c
                } else if u > -0.5 && u < length + 0.5 && v > -0.5 && v < pool_w + 0.5 {
                    coping
                } else {
                    let tile = ((u * 2.0).floor() as i64 + (v * 2.0).floor() as i64).rem_euclid(2) as f32;
                    lerp3(deck, [deck[0] * 0.9, deck[1] * 0.9, deck[2] * 0.9], tile)
                };
            }
        }

        let swimmers = draw_swimmers(seed, swimmers, lanes, length);

        Scene {
            width,
            height,
            length,
            lanes,
            to_image,
            to_pool,
            base,
            water,
            pool_uv,
            wave,
            caustic,
            foam,
            wave_amp: rng.range(0.06, 0.16),
            caustic_amp: rng.range(0.05, 0.2),
            glare,
            noise: rng.range(1.0, 4.0),
            swimmers,
            corners,
        }
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The pool's corners in the image: near-left, near-right, far-right, far-left.
    pub fn pool_corners(&self) -> [[f64; 2]; 4] {
        self.corners
    }

    pub fn lanes(&self) -> u32 {
        self.lanes
    }

    /// The same venue (camera, pool, light) with other swimmers: those `seed` draws from `range`.
    pub fn with_swimmers(mut self, seed: u64, range: (u32, u32)) -> Scene {
        self.swimmers = draw_swimmers(seed, range, self.lanes, self.length);
        self
    }

    pub fn swimmer_count(&self) -> usize {
        self.swimmers.len()
    }

    /// The swimmers' lanes, in the order they were drawn (the first is the one [`Scene::with_stop`] stops).
    pub fn swimmer_lanes(&self) -> Vec<u32> {
        self.swimmers.iter().map(|s| s.lane).collect()
    }

    /// The same scene with its first swimmer stopping `from` seconds in, floating still for `seconds`,
    /// then swimming on (the motionless-swimmer scenario). Its lane and the stop, or `None` without
    /// swimmers.
    pub fn with_stop(mut self, from: f32, seconds: f32) -> (Scene, Option<(u32, f32, f32)>) {
        let stop = self.swimmers.first_mut().map(|s| {
            s.stop = Some((from, seconds));
            (s.lane, from, seconds)
        });
        (self, stop)
    }

    /// Where the swimmer of `lane` has its head at time `t`: metres from the start wall.
    pub fn head_position(&self, lane: u32, t: f32) -> Option<f64> {
        let s = self.swimmers.iter().find(|s| s.lane == lane)?;
        let span = self.length - 2.0;
        let p = (s.start + s.speed * s.swim_t(t)).rem_euclid(2.0 * span);
        Some(if p < span { 1.0 + p } else { 1.0 + 2.0 * span - p } as f64)
    }

    /// Every wall turn of the swimmers between `t0` and `t1` seconds, in time order: lane, time, and
    /// whether it was at the far wall. A swimmer turns with its head 1 m from the wall (where a real one
    /// would touch).
    pub fn touches(&self, t0: f64, t1: f64) -> Vec<(u32, f64, bool)> {
        let span = (self.length - 2.0) as f64;
        let mut out = Vec::new();
        for s in &self.swimmers {
            let (start, speed) = (s.start as f64, s.speed as f64);
            // Turns where the position along the bounce (start + speed t) is a multiple of the span: odd
            // multiples at the far wall, even ones at the start wall.
            // In the swimmer's own time (the clock less any stop), mapped back to the clock.
            let (s0, s1) = (s.swim_t(t0 as f32) as f64, s.swim_t(t1 as f32) as f64);
            let to_clock = |ts: f64| match s.stop {
                Some((from, len)) if ts > from as f64 => ts + len as f64,
                _ => ts,
            };
            let first = ((start + speed * s0) / span).floor() as i64 + 1;
            let mut k = first.max(1);
            loop {
                let ts = (k as f64 * span - start) / speed;
                if ts > s1 {
                    break;
                }
                let t = to_clock(ts);
                if ts >= s0 && (t0..=t1).contains(&t) {
                    out.push((s.lane, t, k % 2 == 1));
                }
                k += 1;
            }
        }
        out.sort_by(|a, b| a.1.total_cmp(&b.1));
        out
    }

    /// The `[lanes]` of this camera: its pool's corners (the start wall is the one at distance 0 of
    /// [`Truth::distance_m`], lane 1 the nearest the camera, as in [`Truth::lane`]), lanes and length.
    pub fn lane_settings(&self) -> crate::pipeline::lanes::LaneSettings {
        let c = self.corners;
        crate::pipeline::lanes::LaneSettings { corners: [c[0], c[3], c[2], c[1]], count: self.lanes, length_m: self.length as f64 }
    }

    pub fn length_m(&self) -> f32 {
        self.length
    }

    /// Renders the scene at time `t` seconds into `img` (reallocated only if its size differs) and
    /// returns the swimmers' ground truth. `frame` seeds the sensor noise.
    pub fn render_into(&self, t: f32, frame: u64, img: &mut RgbImage) -> Vec<Truth> {
        if img.dimensions() != (self.width, self.height) {
            *img = RgbImage::new(self.width, self.height);
        }
        crate::pipeline::simd::avx2_or!(self.water_avx2(t, frame, img.as_mut()), self.water(t, frame, img.as_mut(), |_, _, _| 0));
        self.swimmers.iter().filter_map(|s| self.draw_swimmer(s, t, img)).collect()
    }

    /// [`water`](Self::water) with its texture samples taken eight pixels at a time (AVX2 gathers, the
    /// same arithmetic): the same pixels, bit for bit.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn water_avx2(&self, t: f32, frame: u64, out: &mut [u8]) {
        use std::arch::x86_64::*;
        let tex_m = TEX as f32 / 8.0;
        let (w1, w2) = ([t * 0.35, t * 0.12], [-t * 0.22, t * 0.3]);
        let c = |v: f32| _mm256_set1_ps(v);
        let (t1, t17, t2) = (c(tex_m), c(1.7), c(2.0));
        self.water(t, frame, out, |uv, wave, caustic| {
            let mut done = 0;
            for ((uv, wave), caustic) in uv.chunks_exact(8).zip(wave.chunks_exact_mut(8)).zip(caustic.chunks_exact_mut(8)) {
                let u = _mm256_setr_ps(uv[0][0], uv[1][0], uv[2][0], uv[3][0], uv[4][0], uv[5][0], uv[6][0], uv[7][0]);
                let v = _mm256_setr_ps(uv[0][1], uv[1][1], uv[2][1], uv[3][1], uv[4][1], uv[5][1], uv[6][1], uv[7][1]);
                let (add, mul) = (|a, b| _mm256_add_ps(a, b), |a, b| _mm256_mul_ps(a, b));
                let s1 = sample8::sample(&self.wave.0, mul(add(u, c(w1[0])), t1), mul(add(v, c(w1[1])), t1));
                let s2 = sample8::sample(&self.wave.0, mul(mul(add(u, c(w2[0])), t1), t17), mul(mul(add(v, c(w2[1])), t1), t17));
                let s3 = sample8::sample(
                    &self.caustic.0,
                    mul(mul(add(u, c(w2[0] * 0.5)), t1), t2),
                    mul(mul(add(v, c(w1[1] * 0.5)), t1), t2),
                );
                let wv = add(mul(c(0.6), s1), mul(c(0.4), s2));
                // SAFETY: both chunks hold exactly eight f32s, what an unaligned 256-bit store writes.
                unsafe {
                    _mm256_storeu_ps(wave.as_mut_ptr(), wv);
                    _mm256_storeu_ps(caustic.as_mut_ptr(), s3);
                }
                done += 8;
            }
            done
        })
    }

    /// The pool without swimmers at time `t`: waves, caustics and glare on the water, flicker and sensor
    /// noise everywhere. `fast_samples(uv, wave, caustic)` may fill a block's first texture samples
    /// (as [`Texture::sample`] would, bit for bit) and says how many it did; the rest are taken here.
    #[inline(always)]
    fn water(&self, t: f32, frame: u64, out: &mut [u8], mut fast_samples: impl FnMut(&[[f32; 2]], &mut [f32], &mut [f32]) -> usize) {
        const BLOCK: usize = 64;
        let tex_m = TEX as f32 / 8.0;
        let (w1, w2) = ([t * 0.35, t * 0.12], [-t * 0.22, t * 0.3]);
        let flicker = 1.0 + 0.015 * (t * 1.7).sin();
        let mut noise = Rng::fork(frame, 7);
        let [gu, gv, gr, ga] = self.glare;
        let (mut wave, mut caustic) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        let blocks = out.chunks_mut(3 * BLOCK).zip(self.base.chunks(BLOCK)).zip(self.water.chunks(BLOCK)).zip(self.pool_uv.chunks(BLOCK));
        for (((px, base), water), uv) in blocks {
            let n = uv.len();
            let done = fast_samples(uv, &mut wave[..n], &mut caustic[..n]);
            for ((wv, ca), (&[u, v], &wstr)) in wave[done..n].iter_mut().zip(&mut caustic[done..n]).zip(uv[done..].iter().zip(&water[done..])) {
                if wstr > 0.0 {
                    *wv = 0.6 * self.wave.sample((u + w1[0]) * tex_m, (v + w1[1]) * tex_m)
                        + 0.4 * self.wave.sample((u + w2[0]) * tex_m * 1.7, (v + w2[1]) * tex_m * 1.7);
                    *ca = self.caustic.sample((u + w2[0] * 0.5) * tex_m * 2.0, (v + w1[1] * 0.5) * tex_m * 2.0);
                }
            }
            let pixels = px.chunks_exact_mut(3).zip(base).zip(water).zip(uv).zip(wave.iter().zip(&caustic));
            for ((((px, &base), &wstr), &[u, v]), (&wv, &ca)) in pixels {
                let mut c = base;
                if wstr > 0.0 {
                    let d2 = ((u - gu) / gr).powi(2) + ((v - gv) / (gr * 0.5)).powi(2);
                    let glare = if d2 < 9.0 { ga * (-d2).exp() * (0.3 + 2.0 * wv.max(0.0).powi(2)) } else { 0.0 };
                    let gain = 1.0 + self.wave_amp * wv * wstr;
                    let add = (self.caustic_amp * ca + glare) * 255.0 * wstr;
                    for ch in &mut c {
                        *ch = *ch * gain + add;
                    }
                }
                let n = (noise.f32() - 0.5) * 2.0 * self.noise;
                for (o, ch) in px.iter_mut().zip(c) {
                    *o = (ch * flicker + n).clamp(0.0, 255.0) as u8;
                }
            }
        }
    }

    /// Renders a new image at time `t`.
    pub fn render(&self, t: f32, frame: u64) -> (RgbImage, Vec<Truth>) {
        let mut img = RgbImage::new(self.width, self.height);
        let truth = self.render_into(t, frame, &mut img);
        (img, truth)
    }

    fn draw_swimmer(&self, s: &Swimmer, t: f32, img: &mut RgbImage) -> Option<Truth> {
        // Position along the pool bounces between the walls.
        let span = self.length - 2.0;
        let st = s.swim_t(t);
        let p = (s.start + s.speed * st).rem_euclid(2.0 * span);
        let (head_u, dir) = if p < span { (1.0 + p, 1.0) } else { (1.0 + 2.0 * span - p, -1.0) };
        let vc = (s.lane as f32 - 0.5) * LANE_W;
        // Stopped: floating face down, arms still and no splashes.
        let moving = !s.stopped_at(t);
        let phase = s.phase + st * s.stroke_hz * std::f32::consts::TAU;
        let reach = -0.25 + 0.65 * phase.cos().max((phase + std::f32::consts::PI).cos());
        // Ground truth: the swimmer's extent in pool coordinates (local a along the swim direction).
        let (a_min, a_max, b_max) = (-1.85f32, reach.max(0.2) + 0.08, 0.32f32);
        let to_pool = |a: f32, b: f32| (head_u + dir * a, vc + b);
        let mut x1 = f64::MAX;
        let mut y1 = f64::MAX;
        let mut x2 = f64::MIN;
        let mut y2 = f64::MIN;
        for (a, b) in [(a_min, -b_max), (a_min, b_max), (a_max, -b_max), (a_max, b_max)] {
            let (u, v) = to_pool(a, b);
            let (x, y) = self.to_image.apply(u as f64, v as f64);
            x1 = x1.min(x);
            y1 = y1.min(y);
            x2 = x2.max(x);
            y2 = y2.max(y);
        }
        let (w, h) = (self.width as f64, self.height as f64);
        let (cx1, cy1, cx2, cy2) = (x1.max(0.0), y1.max(0.0), x2.min(w), y2.min(h));
        if cx2 - cx1 < 3.0 || cy2 - cy1 < 2.0 || (cx2 - cx1) * (cy2 - cy1) < 0.5 * (x2 - x1) * (y2 - y1) {
            return None;
        }
        let foam_t = t * 3.0;
        for y in cy1.floor() as u32..cy2.ceil() as u32 {
            for x in cx1.floor() as u32..cx2.ceil() as u32 {
                let [u, v] = self.pool_uv[(y * self.width + x) as usize];
                let a = (u - head_u) * dir;
                let b = v - vc;
                if a < a_min - 0.3 || a > a_max + 0.3 || b.abs() > b_max + 0.1 {
                    continue;
                }
                let px = img.get_pixel_mut(x, y);
                let mut c = [px[0] as f32, px[1] as f32, px[2] as f32];
                // Body and legs, under water: skin seen through the water.
                let body = ((a + 0.9) / 0.85).powi(2) + (b / 0.2).powi(2);
                if body < 1.0 {
                    c = lerp3(c, [s.skin[0] * 0.7, s.skin[1] * 0.75, s.skin[2] * 0.8], 0.55);
                }
                // Arms: capsules from the shoulders; opaque above water, faint below.
                for k in 0..2 {
                    let th = phase + k as f32 * std::f32::consts::PI;
                    let side = if k == 0 { 1.0 } else { -1.0 };
                    let (sa, sb) = (-0.25, 0.2 * side);
                    let (ha, hb) = (-0.25 + 0.65 * th.cos(), 0.26 * side);
                    let (da, db) = (ha - sa, hb - sb);
                    let len2 = (da * da + db * db).max(1e-6);
                    let q = (((a - sa) * da + (b - sb) * db) / len2).clamp(0.0, 1.0);
                    let dist = ((a - sa - q * da).powi(2) + (b - sb - q * db).powi(2)).sqrt();
                    if dist < 0.065 {
                        let above = th.sin() > 0.0;
                        c = lerp3(c, s.skin, if above { 0.95 } else { 0.45 });
                    }
                    // Splash where a hand enters the water.
                    let entry = ((a - 0.4) / 0.3).powi(2) + ((b - 0.26 * side) / 0.2).powi(2);
                    if moving && entry < 1.0 && th.cos() > 0.6 {
                        let f = self.foam.sample(u * 96.0 + foam_t * 40.0, v * 96.0);
                        if f > 0.1 {
                            c = lerp3(c, [245.0, 250.0, 255.0], 0.8);
                        }
                    }
                }
                // Kick splash behind the feet.
                let kick = ((a + 1.62) / 0.3).powi(2) + (b / 0.24).powi(2);
                if moving && kick < 1.0 {
                    let f = self.foam.sample(u * 80.0 - foam_t * 30.0, v * 80.0 + foam_t * 20.0);
                    if f > -0.1 {
                        c = lerp3(c, [240.0, 248.0, 255.0], 0.75);
                    }
                }
                // Head and cap.
                let head = ((a - 0.02) / 0.14).powi(2) + (b / 0.11).powi(2);
                if head < 1.0 {
                    c = lerp3(s.cap, [255.0, 255.0, 255.0], if head < 0.15 { 0.35 } else { 0.0 });
                }
                *px = image::Rgb([c[0].clamp(0.0, 255.0) as u8, c[1].clamp(0.0, 255.0) as u8, c[2].clamp(0.0, 255.0) as u8]);
            }
        }
        Some(Truth {
            bbox: BBox { x1: cx1 as f32, y1: cy1 as f32, x2: cx2 as f32, y2: cy2 as f32, score: 1.0 },
            lane: s.lane,
            distance_m: head_u,
        })
    }

    /// Pool coordinates (metres) of an image point; `None` beyond the horizon.
    pub fn image_to_pool(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let m = &self.to_pool.0;
        if m[6] * x + m[7] * y + m[8] <= 0.0 {
            return None;
        }
        Some(self.to_pool.apply(x, y))
    }
}

/// What `poolwatch synth` and the synthetic camera make.
#[derive(Clone, Debug)]
pub struct SynthSettings {
    pub width: u32,
    pub height: u32,
    /// Swimmers per scene, inclusive range.
    pub swimmers: (u32, u32),
    pub seed: u64,
    /// Camera placements the frames are spread over.
    pub scenes: u32,
    /// Seconds between consecutive frames of a scene.
    pub interval: f32,
    pub camera: Camera,
    /// The overhead camera's first swimmer stops and floats: from (seconds), for how long.
    pub stop: Option<(f32, f32)>,
}

impl Default for SynthSettings {
    fn default() -> Self {
        SynthSettings { width: 640, height: 480, swimmers: (1, 4), seed: 1, scenes: 1, interval: 0.04, camera: Camera::Overhead, stop: None }
    }
}

/// Which synthetic camera: above the water in the stands, or under it looking along the lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Camera {
    #[default]
    Overhead,
    Underwater,
}

impl Camera {
    pub fn parse(s: &str) -> Option<Camera> {
        match s {
            "overhead" => Some(Camera::Overhead),
            "underwater" => Some(Camera::Underwater),
            _ => None,
        }
    }
}

/// A synthetic venue of either camera.
#[derive(Clone, Debug)]
pub enum Venue {
    Overhead(Scene),
    Underwater(Underwater),
}

impl Venue {
    pub fn new(camera: Camera, seed: u64, width: u32, height: u32, swimmers: (u32, u32)) -> Venue {
        match camera {
            Camera::Overhead => Venue::Overhead(Scene::new(seed, width, height, swimmers)),
            Camera::Underwater => Venue::Underwater(Underwater::new(seed, width, height, swimmers)),
        }
    }

    /// Renders the venue at time `t` into `img`; the swimmers' ground truth.
    pub fn render_into(&self, t: f32, frame: u64, img: &mut RgbImage) -> Vec<Truth> {
        match self {
            Venue::Overhead(s) => s.render_into(t, frame, img),
            Venue::Underwater(s) => s.render_into(t, frame, img),
        }
    }

    /// The `[lanes]` of the overhead camera's pool ([`Scene::lane_settings`]); the underwater camera
    /// sees no lanes' ends.
    pub fn lane_settings(&self) -> Option<crate::pipeline::lanes::LaneSettings> {
        match self {
            Venue::Overhead(s) => Some(s.lane_settings()),
            Venue::Underwater(_) => None,
        }
    }

    /// The pool's corners in the image, where the camera sees its outline (the underwater camera sees
    /// only water).
    pub fn pool_corners(&self) -> Option<[[f64; 2]; 4]> {
        match self {
            Venue::Overhead(s) => Some(s.pool_corners()),
            Venue::Underwater(_) => None,
        }
    }
}

/// Parses a stop, `FROM+SECONDS` (e.g. `20+30`: from 20 s for 30 s).
pub fn parse_stop(s: &str) -> Result<(f32, f32), String> {
    let bad = || format!("'{s}' is not a stop like 20+30 (from 20 s, for 30 s)");
    let (a, b) = s.split_once('+').ok_or_else(bad)?;
    let from: f32 = a.trim().parse().map_err(|_| bad())?;
    let len: f32 = b.trim().parse().map_err(|_| bad())?;
    if !(from.is_finite() && len.is_finite() && from >= 0.0 && len > 0.0 && from + len <= 86_400.0) {
        return Err(format!("stop '{s}': the start must be 0 or more and the length more than 0, within a day"));
    }
    Ok((from, len))
}

/// Parses `A..B` (or `N`) into an inclusive range.
pub fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a, b.trim_start_matches('=')),
        None => (s, s),
    };
    let a: u32 = a.trim().parse().map_err(|_| format!("'{s}' is not a range like 1..3"))?;
    let b: u32 = b.trim().parse().map_err(|_| format!("'{s}' is not a range like 1..3"))?;
    if b < a {
        return Err(format!("range '{s}' is empty"));
    }
    Ok((a, b))
}

/// Frame `i` of a synthetic sequence: which scene it belongs to and its time in that scene.
pub fn frame_plan(settings: &SynthSettings, frames: u64, i: u64) -> (u64, f32) {
    let scenes = settings.scenes.max(1) as u64;
    let per = frames.div_ceil(scenes).max(1);
    let scene = (i / per).min(scenes - 1);
    let t = (i - scene * per) as f32 * settings.interval;
    (settings.seed.wrapping_add(scene.wrapping_mul(1_000_003)), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(parse_stop("20+30"), Ok((20.0, 30.0)));
        assert_eq!(parse_stop(" 0.5 + 2 "), Ok((0.5, 2.0)));
        for bad in ["20", "a+3", "-1+3", "3+0", "1+inf"] {
            assert!(parse_stop(bad).is_err(), "{bad}");
        }
        assert!(parse_stop("x").unwrap_err().contains("20+30"));
    }

    #[test]
    fn a_stopped_swimmer_stays_put_and_its_later_turns_come_later() {
        let plain = Scene::new(1, 320, 240, (2, 2));
        let (scene, stop) = plain.clone().with_stop(20.0, 30.0);
        let (lane, from, len) = stop.unwrap();
        assert_eq!((from, len), (20.0, 30.0));
        let at = |t: f32| scene.head_position(lane, t).unwrap();
        assert_eq!(at(20.0), at(35.0));
        assert_eq!(at(20.0), at(49.9));
        assert_eq!(at(60.0), plain.head_position(lane, 30.0).unwrap());
        // Its turns: the plain scene's, those after the stop 30 s later; the other swimmer's unchanged.
        let expect: Vec<(u32, f64, bool)> = plain
            .touches(0.0, 170.0)
            .into_iter()
            .map(|(l, t, f)| (l, if l == lane && t > 20.0 { t + 30.0 } else { t }, f))
            .filter(|t| t.1 <= 170.0)
            .collect();
        let mut expect = expect;
        expect.sort_by(|a, b| a.1.total_cmp(&b.1));
        let got = scene.touches(0.0, 170.0);
        assert_eq!(got.len(), expect.len());
        for (g, e) in got.iter().zip(&expect) {
            assert!(g.0 == e.0 && g.2 == e.2 && (g.1 - e.1).abs() < 1e-3, "{got:?} {expect:?}");
        }
        // Still: the same body box all through the stop (arms still).
        let body = |t: f32| scene.render(t, 0).1.into_iter().find(|s| s.lane == lane).map(|s| (s.bbox.x1, s.bbox.y1, s.bbox.x2, s.bbox.y2, s.distance_m));
        let a = body(21.0);
        assert!(a.is_some(), "the stopped swimmer is in view");
        assert_eq!(a, body(45.0));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn water_from_avx2_samples_is_the_same_bit_for_bit() {
        if !crate::pipeline::simd::both_variants_run() {
            return;
        }
        // Odd widths leave blocks that end in a partial group of eight; late times give large
        // texture coordinates.
        for (seed, w, h, t) in [(1, 640, 480, 0.0f32), (2, 333, 197, 13.7), (3, 96, 64, 86_400.0), (4, 1280, 720, 3.3)] {
            let scene = Scene::new(seed, w, h, (0, 0));
            let (mut plain, mut avx2) = (vec![0u8; (3 * w * h) as usize], vec![0u8; (3 * w * h) as usize]);
            scene.water(t, 9, &mut plain, |_, _, _| 0);
            // SAFETY: this CPU has AVX2, checked above.
            unsafe { scene.water_avx2(t, 9, &mut avx2) };
            assert!(plain == avx2, "scene {seed} at {w}x{h}, t = {t}");
        }
    }

    #[test]
    fn same_seed_same_frames_and_truth() {
        let a = Scene::new(7, 160, 120, (2, 3));
        let b = Scene::new(7, 160, 120, (2, 3));
        let (ia, ta) = a.render(1.5, 3);
        let (ib, tb) = b.render(1.5, 3);
        assert_eq!(ia.as_raw(), ib.as_raw());
        assert_eq!(ta, tb);
        let (ic, _) = Scene::new(8, 160, 120, (2, 3)).render(1.5, 3);
        assert_ne!(ia.as_raw(), ic.as_raw());
    }

    #[test]
    fn swimmers_are_where_the_truth_says_and_empty_pools_have_none() {
        let scene = Scene::new(3, 320, 240, (3, 3));
        let (img, truth) = scene.render(0.0, 0);
        assert!(!truth.is_empty() && truth.len() <= 3);
        let empty = Scene::new(3, 320, 240, (0, 0));
        let (bg, none) = empty.render(0.0, 0);
        assert!(none.is_empty());
        // The swimmers change pixels inside their boxes and nowhere else (same scene, same noise).
        for (x, y, p) in img.enumerate_pixels() {
            let q = bg.get_pixel(x, y);
            if p != q {
                let inside = truth.iter().any(|t| {
                    let b = t.bbox;
                    (x as f32) >= b.x1.floor() && (x as f32) < b.x2.ceil() && (y as f32) >= b.y1.floor() && (y as f32) < b.y2.ceil()
                });
                assert!(inside, "pixel ({x},{y}) changed outside every swimmer box");
            }
        }
        for t in &truth {
            assert!(t.bbox.x1 >= 0.0 && t.bbox.x2 <= 320.0 && t.bbox.y2 <= 240.0 && t.bbox.area() > 6.0);
            assert!((1..=scene.lanes()).contains(&t.lane));
        }
    }

    #[test]
    fn swimmers_move_over_time() {
        let scene = Scene::new(11, 320, 240, (1, 1));
        let (_, a) = scene.render(0.0, 0);
        let (_, b) = scene.render(2.0, 1);
        assert!((a[0].distance_m - b[0].distance_m).abs() > 1.0);
    }

    #[test]
    fn ranges_and_frame_plan() {
        assert_eq!(parse_range("1..3").unwrap(), (1, 3));
        assert_eq!(parse_range("2").unwrap(), (2, 2));
        assert!(parse_range("3..1").is_err());
        let s = SynthSettings { scenes: 2, interval: 0.5, ..Default::default() };
        assert_eq!(frame_plan(&s, 4, 1), (s.seed, 0.5));
        assert_eq!(frame_plan(&s, 4, 2).1, 0.0);
        assert_ne!(frame_plan(&s, 4, 2).0, s.seed);
    }
}
