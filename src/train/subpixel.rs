//! The decoder's `Resize(x2, nearest) -> Conv(k)` rewritten as the equivalent sub-pixel convolution:
//! one `Conv(k')` at the low resolution to four times the channels, then `DepthToSpace(2, CRD)`.
//!
//! Each output pixel of the upsampled convolution sees only low-resolution pixels, and which ones depends
//! on its phase (row and column parity). Summing the taps that land on the same low-resolution pixel
//! gives one `k' x k'` kernel per phase, `k' = 2 * floor((k/2 + 1) / 2) + 1` (3 for k = 3 or 5, 5 for
//! k = 7 or 9). The graph then convolves a quarter of the pixels with a kernel of 9 taps instead of 25
//! (k = 5) or 25 instead of 49 (k = 7): the same function with 2-3x fewer multiply-adds, for every ONNX
//! runtime. The transform is linear and injective, so the trained weights are recovered exactly up to
//! float rounding ([`from_subpixel`]), which the int8 export and re-exports use.

use super::weights::WeightTensor;

pub use crate::pipeline::model::arch::subpixel_kernel;

/// Where tap `t` (0..k) of a kernel of size `k` lands in the sub-pixel kernel of phase `p` (0 or 1).
fn tap_offset(k: usize, p: usize, t: usize) -> usize {
    let (r, half) = ((k / 2) as i64, (subpixel_kernel(k) / 2) as i64);
    ((p as i64 + t as i64 - r).div_euclid(2) + half) as usize
}

/// The 4*cout x cin x k' x k' weights and 4*cout biases of the sub-pixel convolution equivalent to
/// upsampling by 2 (nearest) then convolving with `w` (`cout x cin x k x k`, padding k/2) and `b`.
/// Output channel `4 * co + 2 * py + px` is output channel `co` at row parity `py`, column parity `px`
/// (`DepthToSpace` in CRD mode).
pub fn to_subpixel(w: &WeightTensor, b: &[f32]) -> (WeightTensor, Vec<f32>) {
    let [cout, cin, k, _] = dims(w);
    let k2 = subpixel_kernel(k);
    let mut out = vec![0.0f32; 4 * cout * cin * k2 * k2];
    for co in 0..cout {
        for (phase, (py, px)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
            for ci in 0..cin {
                let dst = ((co * 4 + phase) * cin + ci) * k2 * k2;
                let src = (co * cin + ci) * k * k;
                for ty in 0..k {
                    let oy = tap_offset(k, py, ty);
                    for tx in 0..k {
                        out[dst + oy * k2 + tap_offset(k, px, tx)] += w.data[src + ty * k + tx];
                    }
                }
            }
        }
    }
    let bias = b.iter().flat_map(|&v| [v; 4]).collect();
    (WeightTensor { shape: vec![4 * cout, cin, k2, k2], data: out }, bias)
}

/// The upsampled convolution's `cout x cin x k x k` weights and biases back from the sub-pixel ones
/// (least squares, which is exact for weights that [`to_subpixel`] made). `None` when the shapes do not
/// fit a kernel of size `k`.
pub fn from_subpixel(w: &WeightTensor, b: &[f32], k: usize) -> Option<(WeightTensor, Vec<f32>)> {
    // The tensor comes from a file: its rank and length are checked before it is indexed.
    if w.shape.len() != 4 || w.data.len() != w.shape.iter().product::<usize>() {
        return None;
    }
    let [c4, cin, k2, k2b] = dims(w);
    if k.is_multiple_of(2) || k2 != subpixel_kernel(k) || k2b != k2 || !c4.is_multiple_of(4) || b.len() != c4 {
        return None;
    }
    let cout = c4 / 4;
    // The 1-D map M (2 k' x k): row p*k'+o has a 1 for every tap that phase p puts at offset o. The 2-D
    // map is M (x) M, so its pseudo-inverse is P (x) P with P = (M^T M)^-1 M^T.
    let mut m = vec![vec![0.0f64; k]; 2 * k2];
    for p in 0..2 {
        for t in 0..k {
            m[p * k2 + tap_offset(k, p, t)][t] = 1.0;
        }
    }
    let pinv = pseudo_inverse(&m, k)?;
    let mut out = vec![0.0f32; cout * cin * k * k];
    for co in 0..cout {
        for ci in 0..cin {
            for ty in 0..k {
                for tx in 0..k {
                    let mut acc = 0.0f64;
                    for (phase, (py, px)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                        let src = ((co * 4 + phase) * cin + ci) * k2 * k2;
                        for oy in 0..k2 {
                            let wy = pinv[ty][py * k2 + oy];
                            if wy == 0.0 {
                                continue;
                            }
                            for ox in 0..k2 {
                                acc += wy * pinv[tx][px * k2 + ox] * w.data[src + oy * k2 + ox] as f64;
                            }
                        }
                    }
                    out[((co * cin + ci) * k + ty) * k + tx] = acc as f32;
                }
            }
        }
    }
    let bias = b.chunks_exact(4).map(|c| c[0]).collect();
    Some((WeightTensor { shape: vec![cout, cin, k, k], data: out }, bias))
}

fn dims(w: &WeightTensor) -> [usize; 4] {
    let s = &w.shape;
    [s[0], s[1], s[2], s[3]]
}

/// `(M^T M)^-1 M^T` for a full-column-rank `rows x n` matrix, by Gauss-Jordan elimination.
fn pseudo_inverse(m: &[Vec<f64>], n: usize) -> Option<Vec<Vec<f64>>> {
    let rows = m.len();
    // [M^T M | M^T]
    let mut a: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut row: Vec<f64> = (0..n).map(|j| (0..rows).map(|r| m[r][i] * m[r][j]).sum()).collect();
            row.extend((0..rows).map(|r| m[r][i]));
            row
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-9 {
            return None;
        }
        a.swap(col, pivot);
        let d = a[col][col];
        a[col].iter_mut().for_each(|v| *v /= d);
        for r in 0..n {
            if r != col {
                let f = a[r][col];
                if f != 0.0 {
                    let pivot_row = a[col].clone();
                    a[r].iter_mut().zip(&pivot_row).for_each(|(v, p)| *v -= f * p);
                }
            }
        }
    }
    Some(a.into_iter().map(|row| row[n..].to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(cout: usize, cin: usize, k: usize, seed: u64) -> (WeightTensor, Vec<f32>) {
        let mut rng = crate::util::rng::Rng::new(seed);
        let data = (0..cout * cin * k * k).map(|_| rng.range(-1.0, 1.0)).collect();
        (WeightTensor { shape: vec![cout, cin, k, k], data }, (0..cout).map(|_| rng.range(-1.0, 1.0)).collect())
    }

    /// A plain stride-1 convolution, `c x h x w` in, padding k/2 (zeros outside).
    fn conv(x: &[f32], cin: usize, h: usize, wd: usize, w: &WeightTensor, b: &[f32]) -> Vec<f32> {
        let [cout, _, k, _] = dims(w);
        let r = (k / 2) as i64;
        let mut out = vec![0.0f32; cout * h * wd];
        for co in 0..cout {
            for y in 0..h {
                for xx in 0..wd {
                    let mut acc = b[co];
                    for ci in 0..cin {
                        for ty in 0..k {
                            for tx in 0..k {
                                let (uy, ux) = (y as i64 + ty as i64 - r, xx as i64 + tx as i64 - r);
                                if uy >= 0 && ux >= 0 && uy < h as i64 && ux < wd as i64 {
                                    let v = x[(ci * h + uy as usize) * wd + ux as usize];
                                    acc += w.data[((co * cin + ci) * k + ty) * k + tx] * v;
                                }
                            }
                        }
                    }
                    out[(co * h + y) * wd + xx] = acc;
                }
            }
        }
        out
    }

    /// Nearest-neighbour upsampling by 2.
    fn upsample(x: &[f32], c: usize, h: usize, wd: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; c * 4 * h * wd];
        for ch in 0..c {
            for y in 0..2 * h {
                for xx in 0..2 * wd {
                    out[(ch * 2 * h + y) * 2 * wd + xx] = x[(ch * h + y / 2) * wd + xx / 2];
                }
            }
        }
        out
    }

    /// ONNX `DepthToSpace(2, CRD)`: channel `4 c + 2 py + px` becomes channel `c` at row parity `py`,
    /// column parity `px`.
    fn depth_to_space(x: &[f32], c4: usize, h: usize, wd: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; c4 * h * wd];
        for ch in 0..c4 {
            let (c, py, px) = (ch / 4, (ch % 4) / 2, ch % 2);
            for y in 0..h {
                for xx in 0..wd {
                    out[(c * 2 * h + 2 * y + py) * 2 * wd + 2 * xx + px] = x[(ch * h + y) * wd + xx];
                }
            }
        }
        out
    }

    /// Upsample x2 (nearest) then convolve, the reference.
    fn resize_conv(x: &[f32], cin: usize, h: usize, wd: usize, w: &WeightTensor, b: &[f32]) -> Vec<f32> {
        conv(&upsample(x, cin, h, wd), cin, 2 * h, 2 * wd, w, b)
    }

    /// Convolve at low resolution, then DepthToSpace(2, CRD).
    fn subpixel_conv(x: &[f32], cin: usize, h: usize, wd: usize, w: &WeightTensor, b: &[f32]) -> Vec<f32> {
        depth_to_space(&conv(x, cin, h, wd, w, b), w.shape[0], h, wd)
    }

    #[test]
    fn kernel_sizes() {
        assert_eq!([1, 3, 5, 7, 9, 11].map(subpixel_kernel), [1, 3, 3, 5, 5, 7]);
    }

    #[test]
    fn same_function_as_upsample_then_convolve() {
        for k in [1, 3, 5, 7, 9] {
            let (cin, h, wd) = (3, 5, 6);
            let (w, b) = weights(2, cin, k, k as u64);
            let mut rng = crate::util::rng::Rng::new(9);
            let x: Vec<f32> = (0..cin * h * wd).map(|_| rng.range(-1.0, 1.0)).collect();
            let (ws, bs) = to_subpixel(&w, &b);
            assert_eq!(ws.shape, vec![8, cin, subpixel_kernel(k), subpixel_kernel(k)]);
            let (want, got) = (resize_conv(&x, cin, h, wd, &w, &b), subpixel_conv(&x, cin, h, wd, &ws, &bs));
            for (a, g) in want.iter().zip(&got) {
                assert!((a - g).abs() < 1e-4, "k {k}: {a} vs {g}");
            }
        }
    }

    #[test]
    fn weights_come_back() {
        for k in [1, 3, 5, 7, 9] {
            let (w, b) = weights(3, 2, k, 40 + k as u64);
            let (ws, bs) = to_subpixel(&w, &b);
            let (w2, b2) = from_subpixel(&ws, &bs, k).unwrap();
            assert_eq!(w2.shape, w.shape);
            assert_eq!(b2, b);
            for (a, g) in w.data.iter().zip(&w2.data) {
                assert!((a - g).abs() < 1e-5, "k {k}: {a} vs {g}");
            }
        }
        // A kernel size that does not fit the sub-pixel shape is refused.
        let (ws, bs) = to_subpixel(&weights(1, 1, 5, 1).0, &[0.0]);
        assert!(from_subpixel(&ws, &bs, 7).is_none());
        // So is a tensor from a damaged file: wrong rank, or fewer values than its shape says.
        assert!(from_subpixel(&WeightTensor { shape: vec![4, 3], data: vec![0.0; 12] }, &bs, 5).is_none());
        assert!(from_subpixel(&WeightTensor { shape: ws.shape.clone(), data: vec![0.0; 5] }, &bs, 5).is_none());
    }
}
