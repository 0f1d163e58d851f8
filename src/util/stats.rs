//! Order statistics: the median and quantiles of samples, by selection (no full sort).

/// The element at `index` of `v` sorted by `cmp` (`v` is reordered).
fn select<T: Copy>(v: &mut [T], index: usize, cmp: impl FnMut(&T, &T) -> std::cmp::Ordering) -> T {
    *v.select_nth_unstable_by(index, cmp).1
}

/// The upper median of `v` (the element at `len / 2` in sorted order); `None` when empty.
pub fn median_f32(v: &mut [f32]) -> Option<f32> {
    (!v.is_empty()).then(|| select(v, v.len() / 2, f32::total_cmp))
}

/// The upper median of `v` (the element at `len / 2` in sorted order); `None` when empty.
pub fn median_f64(v: &mut [f64]) -> Option<f64> {
    (!v.is_empty()).then(|| select(v, v.len() / 2, f64::total_cmp))
}

/// The element at quantile `q` (0..=1) of `v`: the one at `round((len - 1) q)` in sorted order;
/// `None` when empty.
pub fn quantile_f32(v: &mut [f32], q: f32) -> Option<f32> {
    (!v.is_empty()).then(|| select(v, (((v.len() - 1) as f32 * q).round() as usize).min(v.len() - 1), f32::total_cmp))
}

/// As [`quantile_f32`], in f64.
pub fn quantile_f64(v: &mut [f64], q: f64) -> Option<f64> {
    (!v.is_empty()).then(|| select(v, (((v.len() - 1) as f64 * q).round() as usize).min(v.len() - 1), f64::total_cmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_quantiles_match_a_sort() {
        let data = [5.0f32, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0];
        let mut sorted = data.to_vec();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(median_f32(&mut data.clone()), Some(sorted[data.len() / 2]));
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 1.0] {
            let at = sorted[((data.len() - 1) as f32 * q).round() as usize];
            assert_eq!(quantile_f32(&mut data.clone(), q), Some(at), "q {q}");
            let d64: Vec<f64> = data.iter().map(|&x| x as f64).collect();
            assert_eq!(quantile_f64(&mut d64.clone(), q as f64), Some(at as f64), "q {q}");
        }
        assert_eq!(median_f64(&mut [2.0, 1.0]), Some(2.0));
        assert_eq!(median_f32(&mut []), None);
        assert_eq!(quantile_f64(&mut [], 0.5), None);
    }
}
