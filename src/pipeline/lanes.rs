//! Lane mapping: the pool's four corners in the image, the lane count and the pool's length give a
//! homography to pool coordinates, hence each swimmer's lane and distance along the pool in metres.

use crate::util::setting::{AboveUpTo, SettingError, in_range};
use crate::pipeline::geometry::Homography;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneSettings {
    /// The pool's corners in the image, in pixels of the camera frame: the start wall's left end,
    /// the start wall's right end, the far wall's right end, the far wall's left end ("left" and
    /// "right" as seen from the start wall looking down the pool). Lane 1 is on the left.
    pub corners: [[f64; 2]; 4],
    /// Number of lanes across the pool.
    pub count: u32,
    /// Length of the pool in metres (start wall to far wall).
    pub length_m: f64,
}

impl LaneSettings {
    /// Every key in its range and the corners a pool (keys as the `[lanes]` section names them).
    pub fn validate(&self) -> Result<(), SettingError> {
        in_range("count", self.count, 1..=32)?;
        in_range("length_m", self.length_m, AboveUpTo(0.0, 1000.0))?;
        if self.corners.iter().flatten().any(|v| !v.is_finite()) {
            return Err(SettingError::new("corners", "must be finite numbers"));
        }
        LaneMap::new(self).map(|_| ())
    }
}

/// Where a swimmer is in the pool.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PoolPosition {
    /// 1-based lane number.
    pub lane: u32,
    /// Distance from the start wall, metres.
    pub distance_m: f64,
}

/// The width of a lane, for distances across the pool (the standard's 2.5 m; `[lanes]` gives only the
/// pool's length).
pub const LANE_WIDTH_M: f64 = 2.5;

#[derive(Clone, Debug)]
pub struct LaneMap {
    /// Image pixels to (across in [0, 1], along in [0, 1]).
    to_pool: Homography,
    count: u32,
    length_m: f64,
}

impl LaneMap {
    pub fn new(s: &LaneSettings) -> Result<LaneMap, SettingError> {
        let unit = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        let to_pool = Homography::from_points(&s.corners, &unit)
            .ok_or_else(|| SettingError::new("corners", "the four corners are degenerate (three on a line?)"))?;
        // The corners must form a convex quadrilateral in order, or the mapping folds over itself.
        let c = &s.corners;
        let cross = |a: [f64; 2], b: [f64; 2], o: [f64; 2]| (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
        let signs: Vec<f64> = (0..4).map(|i| cross(c[(i + 1) % 4], c[(i + 2) % 4], c[i])).collect();
        if !(signs.iter().all(|&v| v > 0.0) || signs.iter().all(|&v| v < 0.0)) {
            return Err(SettingError::new("corners", "must be a convex quadrilateral listed in order around the pool"));
        }
        Ok(LaneMap { to_pool, count: s.count, length_m: s.length_m })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// The lane and distance of an image point, or `None` outside the pool.
    pub fn locate(&self, x: f64, y: f64) -> Option<PoolPosition> {
        let (u, v) = self.to_pool.apply(x, y);
        let eps = 1e-9;
        if !(-eps..=1.0 + eps).contains(&u) || !(-eps..=1.0 + eps).contains(&v) {
            return None;
        }
        let lane = ((u.clamp(0.0, 1.0 - 1e-12) * self.count as f64).floor() as u32) + 1;
        Some(PoolPosition { lane, distance_m: v.clamp(0.0, 1.0) * self.length_m })
    }

    /// Where a swimmer's box is: its centre.
    pub fn locate_box(&self, b: &[f32; 4]) -> Option<PoolPosition> {
        self.locate(((b[0] + b[2]) / 2.0) as f64, ((b[1] + b[3]) / 2.0) as f64)
    }

    /// How far a box reaches along the pool, in metres: the spread of the distances of its four edges'
    /// midpoints (a swimmer lies along the lane, so this is about its length, head to feet; across the
    /// lane a box is narrow and adds little).
    pub fn extent_along(&self, b: &[f32; 4]) -> f64 {
        let (lo, hi) = self.span_along(b);
        if hi >= lo { hi - lo } else { 0.0 }
    }

    /// The distances from the start wall, in metres, that a box reaches from and to (see
    /// [`extent_along`](Self::extent_along)).
    pub fn span_along(&self, b: &[f32; 4]) -> (f64, f64) {
        let [x1, y1, x2, y2] = b.map(|v| v as f64);
        let (cx, cy) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
        let along = [(x1, cy), (x2, cy), (cx, y1), (cx, y2)].map(|(x, y)| self.to_pool.apply(x, y).1 * self.length_m);
        let lo = along.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = along.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    /// How many image pixels a square metre of the pool's surface covers at an image point (the
    /// perspective's local scale, lanes taken as [`LANE_WIDTH_M`] wide); `None` outside the pool.
    pub fn pixels_per_m2(&self, x: f64, y: f64) -> Option<f64> {
        self.locate(x, y)?;
        // The homography's Jacobian by central differences (exact enough over a pixel).
        let (ul, vl) = self.to_pool.apply(x - 0.5, y);
        let (ur, vr) = self.to_pool.apply(x + 0.5, y);
        let (ut, vt) = self.to_pool.apply(x, y - 0.5);
        let (ub, vb) = self.to_pool.apply(x, y + 0.5);
        let unit_per_px = ((ur - ul) * (vb - vt) - (ub - ut) * (vr - vl)).abs();
        let m2_per_px = unit_per_px * self.count as f64 * LANE_WIDTH_M * self.length_m;
        (m2_per_px.is_finite() && m2_per_px > 0.0).then(|| 1.0 / m2_per_px)
    }

    /// A box's centre in pool metres: across (from lane 1's side, lanes taken as [`LANE_WIDTH_M`] wide)
    /// and along (from the start wall); `None` outside the pool.
    pub fn metres_of_box(&self, b: &[f32; 4]) -> Option<[f64; 2]> {
        let (u, v) = self.to_pool.apply(((b[0] + b[2]) / 2.0) as f64, ((b[1] + b[3]) / 2.0) as f64);
        let eps = 1e-9;
        if !(-eps..=1.0 + eps).contains(&u) || !(-eps..=1.0 + eps).contains(&v) {
            return None;
        }
        Some([u.clamp(0.0, 1.0) * self.count as f64 * LANE_WIDTH_M, v.clamp(0.0, 1.0) * self.length_m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LaneSettings {
        // A 50 m, 8-lane pool seen in perspective: the start wall at the bottom of a 640x480 frame.
        LaneSettings { corners: [[40.0, 460.0], [600.0, 460.0], [440.0, 60.0], [200.0, 60.0]], count: 8, length_m: 50.0 }
    }

    #[test]
    fn corners_and_centre_map_to_lanes_and_metres() {
        let m = LaneMap::new(&settings()).unwrap();
        let p = m.locate(41.0, 459.0).unwrap();
        assert!(p.lane == 1 && p.distance_m < 0.2, "{p:?}");
        let p = m.locate(599.0, 459.5).unwrap();
        assert_eq!((p.lane, p.distance_m.round()), (8, 0.0));
        let p = m.locate(439.0, 60.5).unwrap();
        assert_eq!((p.lane, p.distance_m.round()), (8, 50.0));
        // The middle of the start wall is the line between lanes 4 and 5.
        assert_eq!(m.locate(319.0, 460.0).unwrap().lane, 4);
        assert_eq!(m.locate(321.0, 460.0).unwrap().lane, 5);
        assert!(m.locate(10.0, 10.0).is_none());
        assert!(m.locate(320.0, 470.0).is_none());
        // In metres: the start wall's middle, and the far wall's right end.
        let c = m.metres_of_box(&[318.0, 458.0, 322.0, 462.0]).unwrap();
        assert!((c[0] - 10.0).abs() < 0.05 && c[1].abs() < 0.05, "{c:?}");
        let c = m.metres_of_box(&[439.0, 60.0, 439.0, 61.0]).unwrap();
        assert!((c[0] - 20.0).abs() < 0.2 && (c[1] - 50.0).abs() < 0.2, "{c:?}");
        assert!(m.metres_of_box(&[0.0, 0.0, 20.0, 20.0]).is_none());
    }

    #[test]
    fn a_square_metre_covers_fewer_pixels_far_away() {
        // Seen from straight above (a rectangle), every square metre is the same: 560 x 400 pixels
        // for 8 lanes of 2.5 m by 50 m.
        let flat = LaneMap::new(&LaneSettings { corners: [[40.0, 460.0], [600.0, 460.0], [600.0, 60.0], [40.0, 60.0]], count: 8, length_m: 50.0 }).unwrap();
        let want = 560.0 * 400.0 / (20.0 * 50.0);
        for (x, y) in [(50.0, 450.0), (320.0, 240.0), (590.0, 70.0)] {
            let got = flat.pixels_per_m2(x, y).unwrap();
            assert!((got - want).abs() < 1e-6 * want, "{got} at ({x}, {y})");
        }
        assert!(flat.pixels_per_m2(10.0, 10.0).is_none());
        // In perspective the far wall is 240 pixels wide against the near one's 560.
        let m = LaneMap::new(&settings()).unwrap();
        let (near, far) = (m.pixels_per_m2(320.0, 455.0).unwrap(), m.pixels_per_m2(320.0, 65.0).unwrap());
        assert!(far < near / 4.0, "near {near}, far {far}");
    }

    #[test]
    fn perspective_puts_the_half_way_point_above_the_image_middle() {
        let m = LaneMap::new(&settings()).unwrap();
        // Along the centre line, 25 m is nearer the far wall in the image than the midpoint (260 px),
        // because the far half of the pool looks shorter.
        let mut y_at_25 = 0.0;
        for y in (60..=460).rev() {
            if m.locate(320.0, y as f64).unwrap().distance_m >= 25.0 {
                y_at_25 = y as f64;
                break;
            }
        }
        assert!(y_at_25 < 260.0 && y_at_25 > 60.0, "{y_at_25}");
    }

    #[test]
    fn bad_settings_name_the_key() {
        let mut s = settings();
        s.count = 0;
        assert_eq!(s.validate().unwrap_err().key, "count");
        let mut s = settings();
        s.corners.swap(1, 2); // a bow tie
        assert_eq!(s.validate().unwrap_err().key, "corners");
        let mut s = settings();
        s.corners = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert_eq!(s.validate().unwrap_err().key, "corners");
    }
}
