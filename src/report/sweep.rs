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
            let (mean, std) = mean_and_std(group.iter().map(|(_, v)| *v));
            SeedPoint { depth: group[0].0, mean, std, n: group.len() }
        })
        .collect()
}

/// The mean of `values` and their standard deviation (`n − 1` in the
/// denominator; 0 for one value).
fn mean_and_std(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count().max(1);
    let mean = values.clone().sum::<f64>() / n as f64;
    let std = if n > 1 { (values.map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() } else { 0.0 };
    (mean, std)
}

/// Curves of runs that differ only by seed, as one: the mean at each x that
/// every curve has, and the standard deviation there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeedBand {
    pub mean: Vec<[f64; 2]>,
    pub std: Vec<f64>,
    /// How many curves.
    pub n: usize,
}

/// The [`SeedBand`] of `curves` (each in x order, as a run logs its steps):
/// x values some curve lacks (a run still training, a probe skipped) are
/// left out, so every point stands on all n curves.
pub fn seed_band(curves: &[&[[f64; 2]]]) -> SeedBand {
    let Some((first, others)) = curves.split_first() else { return SeedBand::default() };
    let lookups: Vec<std::collections::HashMap<u64, f64>> =
        others.iter().map(|c| c.iter().map(|[x, y]| (x.to_bits(), *y)).collect()).collect();
    let mut band = SeedBand { n: curves.len(), ..SeedBand::default() };
    for &[x, y] in first.iter() {
        let ys: Option<Vec<f64>> = std::iter::once(Some(y)).chain(lookups.iter().map(|l| l.get(&x.to_bits()).copied())).collect();
        if let Some(ys) = ys {
            let (mean, std) = mean_and_std(ys.iter().copied());
            band.mean.push([x, mean]);
            band.std.push(std);
        }
    }
    band
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

    #[test]
    fn a_seed_band_stands_on_every_curve() {
        let a = [[0.0, 1.0], [10.0, 2.0], [20.0, 3.0], [30.0, 9.0]];
        let b = [[0.0, 3.0], [10.0, 2.0], [20.0, 5.0]];
        let c = [[0.0, 2.0], [20.0, 4.0], [30.0, 1.0]];
        let band = seed_band(&[&a, &b, &c]);
        assert_eq!(band.n, 3);
        // Step 10 is missing from c, step 30 from b: only 0 and 20 stand on all three.
        assert_eq!(band.mean, vec![[0.0, 2.0], [20.0, 4.0]]);
        assert_eq!(band.std, vec![1.0, 1.0]);
        let one = seed_band(&[&a]);
        assert_eq!((one.mean.len(), one.std.iter().sum::<f64>()), (4, 0.0), "one curve is itself, no spread");
        assert_eq!(seed_band(&[]), SeedBand::default());
    }

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
