//! Percentiles and the `name value unit` report lines.

use std::time::Duration;

/// The value at percentile `p` (0..=100) of `sorted` by nearest rank; `None` if empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The figures of one run, printed as `name value unit` lines.
#[derive(Debug, Default)]
pub struct Figures {
    lines: Vec<(String, f64, &'static str)>,
}

impl Figures {
    /// No figures yet.
    pub fn new() -> Self {
        Figures::default()
    }

    /// Adds one figure.
    pub fn push(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        self.lines.push((name.into(), value, unit));
    }

    /// The figure named `name`, if any.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.lines.iter().find(|l| l.0 == name).map(|l| l.1)
    }

    /// Adds `numerator / denominator` as a ratio named `name`, if both exist and the
    /// denominator is not zero.
    pub fn ratio(&mut self, name: &str, numerator: &str, denominator: &str) {
        if let (Some(n), Some(d)) = (self.get(numerator), self.get(denominator)) {
            if d != 0.0 {
                self.push(name, n / d, "ratio");
            }
        }
    }

    /// The report, one `name value unit` line per figure.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, value, unit) in &self.lines {
            let v = if *unit == "ratio" {
                format!("{value:.3}")
            } else if value.fract() == 0.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.1}")
            };
            out.push_str(&format!("{name} {v} {unit}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&v, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 99.0), Some(Duration::from_millis(7)));
    }

    #[test]
    fn ratios_and_lines() {
        let mut f = Figures::new();
        f.push("a", 3.0, "us");
        f.push("b", 2.0, "us");
        f.ratio("a_vs_b", "a", "b");
        f.ratio("missing", "a", "c");
        assert_eq!(f.render(), "a 3 us\nb 2 us\na_vs_b 1.500 ratio\n");
    }
}
