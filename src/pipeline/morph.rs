//! Binary morphology with a square structuring element and 8-connected component statistics on 0/1
//! masks: the per-frame hot path of box extraction, separable, branch-free inner loops, no allocation
//! once its buffers have grown to the frame. Rows known to be empty are skipped: a thresholded heatmap
//! is mostly empty rows, and the work follows the rows that hold something.
//!
//! Semantics match `imageproc::morphology` with `Norm::LInf` (tested against it): pixels outside the
//! image neither erode nor dilate.

/// Scratch buffers for [`Morphology`]'s operations, kept across frames.
#[derive(Clone, Debug, Default)]
pub struct Morphology {
    tmp: Vec<u8>,
    /// Per row of the mask being worked on: false when the row is all zero.
    rows: Vec<bool>,
    rows_next: Vec<bool>,
    labels: Vec<u32>,
    parent: Vec<u32>,
    slot: Vec<u32>,
    comps: Vec<Component>,
    /// [`core_parts`](Morphology::core_parts)' scratch: visited pixels of the component's bounds, and the
    /// flood fill's stack.
    seen: Vec<u8>,
    stack: Vec<(u32, u32)>,
}

/// One 8-connected component: its bounds (`x2`, `y2` exclusive), pixel count and highest score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Component {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
    pub pixels: usize,
    pub peak: f32,
}

#[derive(Clone, Copy)]
enum Op {
    /// Minimum of 0/1 values.
    And,
    /// Maximum of 0/1 values.
    Or,
}

#[inline(always)]
fn combine(dst: &mut [u8], src: &[u8], op: Op) {
    match op {
        Op::And => dst.iter_mut().zip(src).for_each(|(d, s)| *d &= *s),
        Op::Or => dst.iter_mut().zip(src).for_each(|(d, s)| *d |= *s),
    }
}

impl Morphology {
    pub fn new() -> Morphology {
        Morphology::default()
    }

    /// Opening (erosion then dilation) of radius `r`: removes specks smaller than a (2r+1)-square.
    #[inline(always)]
    pub fn open(&mut self, m: &mut [u8], w: usize, h: usize, r: usize) {
        mark_rows(&mut self.rows, m, w);
        self.filter(m, w, h, r, Op::And);
        self.filter(m, w, h, r, Op::Or);
    }

    /// Closing (dilation then erosion) of radius `r`: joins parts closer than 2r+1 pixels.
    #[inline(always)]
    pub fn close(&mut self, m: &mut [u8], w: usize, h: usize, r: usize) {
        mark_rows(&mut self.rows, m, w);
        self.filter(m, w, h, r, Op::Or);
        self.filter(m, w, h, r, Op::And);
    }

    /// Minimum (`And`) or maximum (`Or`) over the (2r+1)-square around each pixel, clipped to the image,
    /// as a row pass then a column pass. `self.rows` marks `m`'s non-empty rows on entry and on return.
    /// An output row is empty without a look at its pixels when its window of rows has an empty one
    /// (`And`) or only empty ones (`Or`), and empty rows are never read.
    #[inline(always)]
    fn filter(&mut self, m: &mut [u8], w: usize, h: usize, r: usize, op: Op) {
        debug_assert_eq!(m.len(), w * h);
        if r == 0 || m.is_empty() {
            return;
        }
        debug_assert_eq!(self.rows.len(), h);
        self.tmp.resize(m.len(), 0);
        let rows = &self.rows;
        for ((src, dst), _) in m.chunks_exact(w).zip(self.tmp.chunks_exact_mut(w)).zip(rows).filter(|(_, full)| **full) {
            dst.copy_from_slice(src);
            for d in 1..=r.min(w - 1) {
                combine(&mut dst[..w - d], &src[d..], op);
                combine(&mut dst[d..], &src[..w - d], op);
            }
        }
        self.rows_next.clear();
        for y in 0..h {
            let window = &rows[y.saturating_sub(r)..=(y + r).min(h - 1)];
            let empty = match op {
                Op::And => window.contains(&false),
                Op::Or => !window.contains(&true),
            };
            let dst = &mut m[y * w..(y + 1) * w];
            if empty {
                if rows[y] {
                    dst.fill(0);
                }
                self.rows_next.push(false);
                continue;
            }
            // The window's non-empty rows (all of them for `And`); empty ones change nothing in an `Or`.
            let mut first = true;
            for j in y.saturating_sub(r)..=(y + r).min(h - 1) {
                if !rows[j] {
                    continue;
                }
                let src = &self.tmp[j * w..(j + 1) * w];
                if first {
                    dst.copy_from_slice(src);
                    first = false;
                } else {
                    combine(dst, src, op);
                }
            }
            self.rows_next.push(row_is_set(dst));
        }
        std::mem::swap(&mut self.rows, &mut self.rows_next);
    }

    /// The 8-connected components of the set pixels of `m`, numbered in the raster order of their first
    /// pixel, each with the highest value of `score` (same layout as `m`) under it. The slice is reused by
    /// the next call.
    pub fn components(&mut self, m: &[u8], score: &[f32], w: usize, h: usize) -> &[Component] {
        debug_assert_eq!(m.len(), w * h);
        debug_assert_eq!(score.len(), w * h);
        // Pass 1: provisional labels (0 = background) and their equivalences in a union-find forest.
        // Only the non-empty rows' labels are written, and only theirs are read, here and after (a
        // component's rows are all non-empty).
        self.comps.clear();
        if m.is_empty() {
            return &self.comps;
        }
        mark_rows(&mut self.rows, m, w);
        if self.labels.len() < m.len() {
            self.labels.resize(m.len(), 0);
        }
        self.parent.clear();
        self.parent.push(0);
        for y in (0..h).filter(|&y| self.rows[y]) {
            let above = y > 0 && self.rows[y - 1];
            for x in 0..w {
                let i = y * w + x;
                if m[i] == 0 {
                    self.labels[i] = 0;
                    continue;
                }
                let mut label = 0u32;
                let neighbours = [
                    (x > 0).then(|| i - 1),
                    (above && x > 0).then(|| i - w - 1),
                    above.then(|| i - w),
                    (above && x + 1 < w).then(|| i - w + 1),
                ];
                for n in neighbours.into_iter().flatten() {
                    let l = self.labels[n];
                    if l == 0 {
                        continue;
                    }
                    if label == 0 {
                        label = l;
                    } else {
                        union(&mut self.parent, label, l);
                    }
                }
                if label == 0 {
                    label = self.parent.len() as u32;
                    self.parent.push(label);
                }
                self.labels[i] = label;
            }
        }
        // Pass 2: each root gets the next component index the first time it is seen.
        self.slot.clear();
        self.slot.resize(self.parent.len(), u32::MAX);
        let comps = &mut self.comps;
        comps.clear();
        for y in (0..h).filter(|&y| self.rows[y]) {
            for x in 0..w {
                let i = y * w + x;
                let l = self.labels[i];
                if l == 0 {
                    continue;
                }
                let root = find(&mut self.parent, l) as usize;
                if self.slot[root] == u32::MAX {
                    self.slot[root] = comps.len() as u32;
                    comps.push(Component { x1: x as u32, y1: y as u32, x2: 0, y2: 0, pixels: 0, peak: f32::MIN });
                }
                // From here on a pixel's label is its component's index + 1 (see `core_bounds`).
                self.labels[i] = self.slot[root] + 1;
                let c = &mut comps[self.slot[root] as usize];
                c.x1 = c.x1.min(x as u32);
                c.x2 = c.x2.max(x as u32 + 1);
                c.y2 = y as u32 + 1;
                c.pixels += 1;
                c.peak = c.peak.max(score[i]);
            }
        }
        comps
    }

    /// The components found by the last [`components`](Self::components) call.
    pub fn last_components(&self) -> &[Component] {
        &self.comps
    }

    /// The bounds (`x2`, `y2` exclusive) of the pixels of component `index` of the last
    /// [`components`](Self::components) call whose `score` is at least `level`; the component's own
    /// bounds when none is (a `level` above its peak).
    pub fn core_bounds(&self, index: usize, score: &[f32], w: usize, level: f32) -> (u32, u32, u32, u32) {
        let c = self.comps[index];
        let label = index as u32 + 1;
        let (mut x1, mut y1, mut x2, mut y2) = (u32::MAX, u32::MAX, 0, 0);
        for y in c.y1..c.y2 {
            let row = y as usize * w;
            for x in c.x1..c.x2 {
                let i = row + x as usize;
                if self.labels[i] == label && score[i] >= level {
                    x1 = x1.min(x);
                    x2 = x2.max(x + 1);
                    y1 = y1.min(y);
                    y2 = y + 1;
                }
            }
        }
        if x2 == 0 { (c.x1, c.y1, c.x2, c.y2) } else { (x1, y1, x2, y2) }
    }

    /// The 8-connected parts of component `index`'s pixels (of the last [`components`](Self::components)
    /// call) whose `score` is at least `level`, each with its bounds, pixel count and highest score,
    /// in the raster order of their first pixel; none when `level` is above the component's peak.
    /// `out` is cleared first.
    pub fn core_parts(&mut self, index: usize, score: &[f32], w: usize, level: f32, out: &mut Vec<Component>) {
        out.clear();
        let c = self.comps[index];
        let label = index as u32 + 1;
        let bw = (c.x2 - c.x1) as usize;
        self.seen.clear();
        self.seen.resize(bw * (c.y2 - c.y1) as usize, 0);
        let inside = |labels: &[u32], x: u32, y: u32| {
            let i = y as usize * w + x as usize;
            labels[i] == label && score[i] >= level
        };
        for y in c.y1..c.y2 {
            for x in c.x1..c.x2 {
                let li = (y - c.y1) as usize * bw + (x - c.x1) as usize;
                if self.seen[li] != 0 || !inside(&self.labels, x, y) {
                    continue;
                }
                self.seen[li] = 1;
                let mut part = Component { x1: x, y1: y, x2: x + 1, y2: y + 1, pixels: 0, peak: f32::MIN };
                self.stack.clear();
                self.stack.push((x, y));
                while let Some((px, py)) = self.stack.pop() {
                    part.x1 = part.x1.min(px);
                    part.x2 = part.x2.max(px + 1);
                    part.y1 = part.y1.min(py);
                    part.y2 = part.y2.max(py + 1);
                    part.pixels += 1;
                    part.peak = part.peak.max(score[py as usize * w + px as usize]);
                    for (nx, ny) in [
                        (px.wrapping_sub(1), py.wrapping_sub(1)),
                        (px, py.wrapping_sub(1)),
                        (px + 1, py.wrapping_sub(1)),
                        (px.wrapping_sub(1), py),
                        (px + 1, py),
                        (px.wrapping_sub(1), py + 1),
                        (px, py + 1),
                        (px + 1, py + 1),
                    ] {
                        // Outside the component's bounds (a wrapped 0 - 1 included) is not in it.
                        if nx < c.x1 || nx >= c.x2 || ny < c.y1 || ny >= c.y2 {
                            continue;
                        }
                        let ni = (ny - c.y1) as usize * bw + (nx - c.x1) as usize;
                        if self.seen[ni] == 0 && inside(&self.labels, nx, ny) {
                            self.seen[ni] = 1;
                            self.stack.push((nx, ny));
                        }
                    }
                }
                out.push(part);
            }
        }
    }
}

/// Whether a row of a 0/1 mask has a set pixel (a whole-row OR, which vectorises; no early exit).
#[inline(always)]
fn row_is_set(row: &[u8]) -> bool {
    row.iter().fold(0u8, |a, &v| a | v) != 0
}

/// `rows[y]`: whether row `y` of `m` has a set pixel.
#[inline(always)]
fn mark_rows(rows: &mut Vec<bool>, m: &[u8], w: usize) {
    rows.clear();
    if w > 0 {
        rows.extend(m.chunks_exact(w).map(row_is_set));
    }
}

fn find(parent: &mut [u32], mut l: u32) -> u32 {
    while parent[l as usize] != l {
        // Path halving.
        parent[l as usize] = parent[parent[l as usize] as usize];
        l = parent[l as usize];
    }
    l
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        // The smaller label becomes the root.
        let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
        parent[hi as usize] = lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma};
    use imageproc::distance_transform::Norm;
    use imageproc::region_labelling::{Connectivity, connected_components};

    /// A reproducible random mask with blobs and specks (xorshift).
    fn random_mask(w: usize, h: usize, seed: u64, density: u64) -> Vec<u8> {
        let mut s = seed | 1;
        (0..w * h)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                u8::from(s % 100 < density)
            })
            .collect()
    }

    fn to_image(m: &[u8], w: usize, h: usize) -> GrayImage {
        GrayImage::from_fn(w as u32, h as u32, |x, y| Luma([m[y as usize * w + x as usize] * 255]))
    }

    fn from_image(img: &GrayImage) -> Vec<u8> {
        img.pixels().map(|p| u8::from(p[0] > 0)).collect()
    }

    #[test]
    fn open_and_close_match_imageproc() {
        let mut mo = Morphology::new();
        for (w, h) in [(37, 23), (64, 48), (5, 3), (1, 9), (9, 1)] {
            for seed in 1..6u64 {
                // Sparse masks have empty rows, which are skipped (and stale buffers from the denser
                // masks before them must not leak in).
                for density in [1, 3, 20, 50, 80] {
                    let m = random_mask(w, h, seed * 7919 + density, density);
                    for r in 1..=3usize {
                        let mut ours = m.clone();
                        mo.open(&mut ours, w, h, r);
                        let mut theirs = to_image(&m, w, h);
                        imageproc::morphology::open_mut(&mut theirs, Norm::LInf, r as u8);
                        assert_eq!(ours, from_image(&theirs), "open r={r} {w}x{h} seed {seed} density {density}");
                        let mut ours = m.clone();
                        mo.close(&mut ours, w, h, r);
                        let mut theirs = to_image(&m, w, h);
                        imageproc::morphology::close_mut(&mut theirs, Norm::LInf, r as u8);
                        assert_eq!(ours, from_image(&theirs), "close r={r} {w}x{h} seed {seed} density {density}");
                    }
                }
            }
        }
    }

    #[test]
    fn components_match_imageproc_labelling() {
        let mut mo = Morphology::new();
        for (w, h) in [(37, 23), (64, 48), (1, 7), (7, 1)] {
            for (seed, density) in (1..8u64).flat_map(|s| [(s, 45), (s, 2), (s, 8)]) {
                let m = random_mask(w, h, seed, density);
                let score: Vec<f32> = (0..w * h).map(|i| (i * 37 % 101) as f32).collect();
                let comps = mo.components(&m, &score, w, h);
                let labels = connected_components(&to_image(&m, w, h), Connectivity::Eight, Luma([0u8]));
                // imageproc numbers components 1.. in raster order of their first pixel too.
                let n = labels.pixels().map(|p| p[0]).max().unwrap_or(0) as usize;
                assert_eq!(comps.len(), n, "{w}x{h} seed {seed} density {density}");
                let mut expect = vec![Component { x1: u32::MAX, y1: u32::MAX, x2: 0, y2: 0, pixels: 0, peak: f32::MIN }; n];
                for (x, y, l) in labels.enumerate_pixels() {
                    if l[0] == 0 {
                        continue;
                    }
                    let c = &mut expect[l[0] as usize - 1];
                    c.x1 = c.x1.min(x);
                    c.y1 = c.y1.min(y);
                    c.x2 = c.x2.max(x + 1);
                    c.y2 = c.y2.max(y + 1);
                    c.pixels += 1;
                    c.peak = c.peak.max(score[y as usize * w + x as usize]);
                }
                assert_eq!(comps, expect, "{w}x{h} seed {seed} density {density}");
                // Every component's core at level 0 is its whole bounds (core_bounds reads the labels).
                for (i, c) in expect.iter().enumerate() {
                    assert_eq!(mo.core_bounds(i, &score, w, 0.0), (c.x1, c.y1, c.x2, c.y2), "{w}x{h} seed {seed} density {density}");
                }
            }
        }
    }

    #[test]
    fn diagonal_neighbours_join_and_a_u_shape_is_one_component() {
        // A U: its two arms meet only at the bottom row, after both got their own provisional label.
        #[rustfmt::skip]
        let m: Vec<u8> = vec![
            1, 0, 0, 1, 0,
            1, 0, 0, 1, 0,
            1, 1, 1, 1, 0,
            0, 0, 0, 0, 1,
        ];
        let score: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let mut mo = Morphology::new();
        let comps = mo.components(&m, &score, 5, 4);
        assert_eq!(comps.len(), 1, "{comps:?}");
        assert_eq!(comps[0], Component { x1: 0, y1: 0, x2: 5, y2: 4, pixels: 9, peak: 19.0 });
    }

    #[test]
    fn core_bounds_keep_one_components_pixels_above_the_level() {
        // Two components whose bounds overlap: an L (scores 1, with one 5) and a pixel inside its bounds.
        let (w, h) = (8usize, 6usize);
        let mut m = vec![0u8; w * h];
        let mut score = vec![0.0f32; w * h];
        for (x, y, v) in [(1, 1, 1.0), (1, 2, 1.0), (1, 3, 1.0), (2, 3, 1.0), (3, 3, 1.0), (4, 3, 5.0), (4, 1, 9.0)] {
            m[y * w + x] = 1;
            score[y * w + x] = v;
        }
        let mut mo = Morphology::new();
        let comps = mo.components(&m, &score, w, h).to_vec();
        assert_eq!(comps.len(), 2);
        let l = comps.iter().position(|c| c.pixels == 6).unwrap();
        assert_eq!((comps[l].x1, comps[l].y1, comps[l].x2, comps[l].y2), (1, 1, 5, 4));
        assert_eq!(mo.last_components(), &comps[..]);
        // At 2 only the L's 5 counts; the 9 of the other component inside its bounds does not.
        assert_eq!(mo.core_bounds(l, &score, w, 2.0), (4, 3, 5, 4));
        assert_eq!(mo.core_bounds(l, &score, w, 1.0), (1, 1, 5, 4));
        // A level above the peak keeps the component's own bounds.
        assert_eq!(mo.core_bounds(l, &score, w, 6.0), (1, 1, 5, 4));
    }

    #[test]
    fn core_parts_are_the_connected_pieces_above_the_level() {
        // One component, a row of scores 5 5 1 1 7 7 7 with a diagonal step down to a 6 on the next row,
        // and a lone 9 of another component inside its bounds.
        let (w, h) = (9usize, 3usize);
        let mut m = vec![0u8; w * h];
        let mut score = vec![0.0f32; w * h];
        for (x, y, v) in [(0, 0, 5.0), (1, 0, 5.0), (2, 0, 1.0), (3, 0, 1.0), (4, 0, 7.0), (5, 0, 7.0), (6, 0, 7.0), (7, 1, 6.0), (2, 2, 9.0)] {
            m[y * w + x] = 1;
            score[y * w + x] = v;
        }
        let mut mo = Morphology::new();
        let comps = mo.components(&m, &score, w, h).to_vec();
        let big = comps.iter().position(|c| c.pixels == 8).unwrap();
        let mut parts = Vec::new();
        mo.core_parts(big, &score, w, 2.0, &mut parts);
        assert_eq!(
            parts,
            vec![
                Component { x1: 0, y1: 0, x2: 2, y2: 1, pixels: 2, peak: 5.0 },
                // Diagonal neighbours join, as in `components`.
                Component { x1: 4, y1: 0, x2: 8, y2: 2, pixels: 4, peak: 7.0 },
            ]
        );
        // At the lowest score it is the whole component; above its peak, nothing.
        mo.core_parts(big, &score, w, 1.0, &mut parts);
        assert_eq!(parts, vec![Component { x1: 0, y1: 0, x2: 8, y2: 2, pixels: 8, peak: 7.0 }]);
        mo.core_parts(big, &score, w, 8.0, &mut parts);
        assert!(parts.is_empty());
    }
}
