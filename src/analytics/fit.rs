//! Least-squares line fits and percentiles over Prometheus samples (pure).

/// A fitted line `y = intercept + slope · t` (t in seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    pub slope: f64,
    pub intercept: f64,
    /// Coefficient of determination, 0–1 (1: the points lie on the line; 0 for a flat series).
    pub r_squared: f64,
}

impl Line {
    pub fn at(&self, t: f64) -> f64 {
        self.intercept + self.slope * t
    }
}

/// Ordinary least squares over `(t, y)` points; `None` with fewer than 3 points or no spread
/// in time.
pub fn linear(points: &[(f64, f64)]) -> Option<Line> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut stt, mut sty, mut syy) = (0.0, 0.0, 0.0);
    for (t, y) in points {
        let (dt, dy) = (t - mean_t, y - mean_y);
        stt += dt * dt;
        sty += dt * dy;
        syy += dy * dy;
    }
    if stt == 0.0 {
        return None;
    }
    let slope = sty / stt;
    let r_squared = if syy == 0.0 {
        0.0
    } else {
        ((sty * sty) / (stt * syy)).clamp(0.0, 1.0)
    };
    Some(Line {
        slope,
        intercept: mean_y - slope * mean_t,
        r_squared,
    })
}

/// The `q` quantile (0–1) by linear interpolation between closest ranks, as Prometheus'
/// `quantile_over_time` computes it.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    let weight = rank - low as f64;
    Some(sorted[low] * (1.0 - weight) + sorted[high] * weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_line_is_recovered_with_r_squared_one() {
        let points: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64 * 60.0, 100.0 - 2.0 * i as f64 * 60.0))
            .collect();
        let line = linear(&points).expect("fit");
        assert!((line.slope + 2.0).abs() < 1e-9);
        assert!((line.intercept - 100.0).abs() < 1e-6);
        assert!((line.r_squared - 1.0).abs() < 1e-9);
        assert!((line.at(600.0) + 1100.0).abs() < 1e-6);
    }

    #[test]
    fn flat_noisy_and_degenerate_series() {
        let flat: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 7.0)).collect();
        let line = linear(&flat).expect("fit");
        assert_eq!((line.slope, line.r_squared), (0.0, 0.0));
        let noisy = [(0.0, 1.0), (1.0, 3.0), (2.0, 1.0), (3.0, 3.0), (4.0, 1.0)];
        assert!(linear(&noisy).expect("fit").r_squared < 0.1);
        assert_eq!(linear(&[(0.0, 1.0), (1.0, 2.0)]), None);
        assert_eq!(linear(&[(5.0, 1.0), (5.0, 2.0), (5.0, 3.0)]), None);
    }

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.95), Some(95.05));
        assert_eq!(quantile(&values, 0.0), Some(1.0));
        assert_eq!(quantile(&values, 1.0), Some(100.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
