//! The figure of a sweep folder, drawn from its rows (`sweep --collect`):
//! final error against depth for each family, and the gradient that reaches
//! the first layer.

use std::path::Path;

use crate::experiment::SweepRow;
use crate::report::figure::{COLORS, Figure, Panel, Series};
use crate::train::RunStatus;

/// One point of a family's line: a depth, the mean over its seeds' finished
/// runs, their standard deviation (`n − 1` in the denominator; 0 for one
/// run) and how many runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeedPoint {
    pub depth: usize,
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

/// [`SeedPoint`]s of `value` for each depth of `family`'s finished runs.
pub fn by_depth(rows: &[SweepRow], family: &str, value: impl Fn(&SweepRow) -> Option<f32>) -> Vec<SeedPoint> {
    seed_points(rows.iter().filter(|r| r.family == family), value)
}

/// [`SeedPoint`]s of `value` for each depth among `rows` (one family's),
/// over the runs that finished (completed or stopped) with a finite value;
/// sorted by depth.
pub fn seed_points<'a>(rows: impl IntoIterator<Item = &'a SweepRow>, value: impl Fn(&SweepRow) -> Option<f32>) -> Vec<SeedPoint> {
    let mut values: Vec<(usize, f64)> = rows
        .into_iter()
        .filter(|r| matches!(r.status, RunStatus::Completed | RunStatus::Stopped))
        .filter_map(|r| value(r).map(|v| (r.depth, f64::from(v))))
        .filter(|(_, v)| v.is_finite())
        .collect();
    values.sort_by_key(|(depth, _)| *depth);
    values
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let n = group.len();
            let mean = group.iter().map(|(_, v)| v).sum::<f64>() / n as f64;
            let std = if n > 1 { (group.iter().map(|(_, v)| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
            SeedPoint { depth: group[0].0, mean, std, n }
        })
        .collect()
}

/// A family's line with its error bars, values scaled by `scale`.
fn series(name: String, points: &[SeedPoint], scale: f64, color: egui::Color32) -> Series {
    Series::new(name, points.iter().map(|p| [p.depth as f64, p.mean * scale]).collect(), color)
        .with_spread(points.iter().map(|p| p.std * scale).collect())
}

/// The caption's account of the seeds behind each point.
pub fn seeds_caption(counts: &[usize]) -> String {
    let (min, max) = (counts.iter().copied().min().unwrap_or(0), counts.iter().copied().max().unwrap_or(0));
    match (min, max) {
        (_, 0 | 1) => "each point is one run.".to_string(),
        (lo, hi) if lo == hi => format!("each point is the mean over n = {hi} seeds, bars ± one standard deviation."),
        (lo, hi) => {
            format!("each point is the mean over n = {lo}–{hi} seeds (runs that did not finish left out), bars ± one standard deviation.")
        }
    }
}

/// Draws the sweep's figure to `path` (PNG).
pub fn save_sweep_figure(rows: &[SweepRow], title: &str, path: &Path) -> Result<(), crate::util::fsio::FileError> {
    let mut families: Vec<&str> = Vec::new();
    for row in rows {
        if !families.contains(&row.family.as_str()) {
            families.push(&row.family);
        }
    }
    let mut errors =
        Panel::new("final error vs depth (solid: training, dashed: test)", "depth (weight layers)", "error %", false).legend_below();
    let mut gradients =
        Panel::new("first layer's output gradient at the last probe", "depth (weight layers)", "‖∂L/∂output‖", true).legend_below();
    let mut counts = Vec::new();
    for (i, family) in families.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let train = by_depth(rows, family, |r| r.final_train_error);
        let test = by_depth(rows, family, |r| r.final_test_error);
        let gradient = by_depth(rows, family, |r| r.first_layer_output_grad_norm);
        counts.extend(train.iter().chain(&test).map(|p| p.n));
        errors = errors
            .with(series(format!("{family} train"), &train, 100.0, color))
            .with(series(format!("{family} test"), &test, 100.0, color).dashed());
        gradients = gradients.with(series(family.to_string(), &gradient, 1.0, color));
    }
    let finished = rows.iter().filter(|r| matches!(r.status, RunStatus::Completed | RunStatus::Stopped)).count();
    let figure = Figure {
        title: title.to_string(),
        caption: format!("{finished} of {} runs finished; {}", rows.len(), seeds_caption(&counts)),
        panels: vec![errors, gradients],
        columns: 2,
    };
    figure.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(family: &str, depth: usize, seed: u64, test_error: Option<f32>, status: RunStatus) -> SweepRow {
        SweepRow {
            family: family.into(),
            depth,
            seed,
            params: 0,
            final_train_loss: None,
            final_train_error: None,
            final_test_error: test_error,
            first_layer_output_grad_norm: None,
            status,
            run_dir: Default::default(),
        }
    }

    #[test]
    fn each_depth_has_the_mean_and_spread_of_its_finished_seeds() {
        let rows = [
            row("plain", 8, 1, Some(0.1), RunStatus::Completed),
            row("plain", 8, 2, Some(0.2), RunStatus::Completed),
            row("plain", 8, 3, Some(0.3), RunStatus::Stopped),
            // Left out: unfinished, diverged, NaN, another family.
            row("plain", 8, 4, Some(0.9), RunStatus::Diverged),
            row("plain", 8, 5, Some(f32::NAN), RunStatus::Completed),
            row("plain", 20, 1, Some(0.5), RunStatus::Completed),
            row("plain", 32, 1, None, RunStatus::Pending),
            row("resnet", 8, 1, Some(0.7), RunStatus::Completed),
        ];
        let points = by_depth(&rows, "plain", |r| r.final_test_error);
        assert_eq!(points.len(), 2, "{points:?}");
        let p = points[0];
        assert_eq!((p.depth, p.n), (8, 3));
        assert!((p.mean - 0.2).abs() < 1e-6 && (p.std - 0.1).abs() < 1e-6, "{p:?}");
        assert_eq!((points[1].depth, points[1].n, points[1].std), (20, 1, 0.0));
        let s = series("plain test".into(), &points, 100.0, COLORS[0]);
        assert!((s.spread[0] - 10.0).abs() < 1e-4 && (s.points[0][1] - 20.0).abs() < 1e-4, "{s:?}");
    }

    #[test]
    fn the_caption_states_how_many_seeds() {
        assert_eq!(seeds_caption(&[3, 3, 3]), "each point is the mean over n = 3 seeds, bars ± one standard deviation.");
        assert!(seeds_caption(&[2, 3]).contains("n = 2–3"));
        assert_eq!(seeds_caption(&[1, 1]), "each point is one run.");
        assert_eq!(seeds_caption(&[]), "each point is one run.");
    }
}
