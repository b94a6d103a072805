//! The figure of a sweep folder, drawn from its rows (`sweep --collect`):
//! final error against depth for each family, and the gradient that reaches
//! the first layer.

use std::path::Path;

use crate::experiment::SweepRow;
use crate::report::figure::{COLORS, Figure, Panel, Series};
use crate::train::RunStatus;

/// Mean of `value` over the seeds of each depth of `family`'s finished runs.
fn by_depth(rows: &[SweepRow], family: &str, value: impl Fn(&SweepRow) -> Option<f32>) -> Vec<[f64; 2]> {
    let mut depths: Vec<usize> = rows.iter().filter(|r| r.family == family).map(|r| r.depth).collect();
    depths.sort_unstable();
    depths.dedup();
    depths
        .into_iter()
        .filter_map(|depth| {
            let values: Vec<f64> = rows
                .iter()
                .filter(|r| r.family == family && r.depth == depth && matches!(r.status, RunStatus::Completed | RunStatus::Stopped))
                .filter_map(|r| value(r).map(f64::from))
                .filter(|v| v.is_finite())
                .collect();
            (!values.is_empty()).then(|| [depth as f64, values.iter().sum::<f64>() / values.len() as f64])
        })
        .collect()
}

/// Draws the sweep's figure to `path` (PNG).
pub fn save_sweep_figure(rows: &[SweepRow], title: &str, path: &Path) -> Result<(), String> {
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
    for (i, family) in families.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let percent = |points: Vec<[f64; 2]>| points.into_iter().map(|[d, e]| [d, e * 100.0]).collect::<Vec<_>>();
        errors = errors
            .with(Series::new(format!("{family} train"), percent(by_depth(rows, family, |r| r.final_train_error)), color))
            .with(Series::new(format!("{family} test"), percent(by_depth(rows, family, |r| r.final_test_error)), color).dashed());
        gradients = gradients.with(Series::new(*family, by_depth(rows, family, |r| r.first_layer_output_grad_norm), color));
    }
    let finished = rows.iter().filter(|r| matches!(r.status, RunStatus::Completed | RunStatus::Stopped)).count();
    let figure = Figure {
        title: title.to_string(),
        caption: format!("{finished} of {} runs finished; each point is the mean over its seeds.", rows.len()),
        panels: vec![errors, gradients],
        columns: 2,
    };
    figure.save_png(path)
}
