//! The Why tab's pictures: test error per removed block, gradient per path
//! length, and the loss landscape as a heat map with the trained point.

use egui::{Color32, ColorImage, TextureOptions, Vec2};
use egui_plot::{Bar, BarChart, HLine, Line, LineStyle, MarkerShape, Plot, PlotImage, PlotPoint, PlotPoints, Points};

use crate::analysis::landscape::Landscape;
use crate::analysis::lesion::LesionReport;
use crate::analysis::paths::PathsReport;
use crate::app::plots::heatmap::colormap;
use crate::app::plots::{legend_entry, log_plot, log10};

const HEIGHT: f32 = 220.0;
const BARS: Color32 = Color32::from_rgb(66, 165, 245);
const TOTALS: Color32 = Color32::from_rgb(255, 167, 38);

/// Test error with each block removed, then with k random blocks removed.
pub fn lesion_ui(ui: &mut egui::Ui, report: &LesionReport, side: usize) {
    let base = report.baseline_test_error * 100.0;
    let singles = report.single_errors();
    let worst = singles.iter().copied().fold(f64::NAN, f64::max) * 100.0;
    ui.label(format!(
        "Test error {base:.1}% with every block. Removing one block: median rise {:+.1} points, worst {worst:.1}% ({} of {} blocks removable).",
        report.median_rise() * 100.0,
        singles.len(),
        report.blocks.len()
    ));
    let bars: Vec<Bar> = report
        .blocks
        .iter()
        .filter_map(|b| b.test_error.map(|e| Bar::new(b.index as f64, e * 100.0).name(format!("block {}: {}", b.index, b.name)).width(0.7)))
        .collect();
    Plot::new(("lesion-blocks", side))
        .height(HEIGHT)
        .include_y(0.0)
        .include_y(100.0)
        .y_grid_spacer(percent_marks())
        .x_axis_label("block removed")
        .y_axis_label("test error %")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("one block removed", bars).color(BARS));
            plot.hline(HLine::new("every block", base).color(Color32::GRAY).style(LineStyle::dashed_loose()));
        });
    let skipped: Vec<String> = report.blocks.iter().filter(|b| b.skipped.is_some()).map(|b| b.index.to_string()).collect();
    if !skipped.is_empty() {
        ui.weak(format!("Blocks {} change the shape and cannot be removed.", skipped.join(", ")));
    }
    if report.random.is_empty() {
        return;
    }
    ui.label("k blocks removed at random (mean ± one standard deviation over the draws)");
    let mean: Vec<[f64; 2]> = report.random.iter().map(|r| [r.k as f64, r.mean * 100.0]).collect();
    let upper: Vec<[f64; 2]> = report.random.iter().map(|r| [r.k as f64, (r.mean + r.std) * 100.0]).collect();
    let lower: Vec<[f64; 2]> = report.random.iter().map(|r| [r.k as f64, (r.mean - r.std).max(0.0) * 100.0]).collect();
    Plot::new(("lesion-random", side))
        .height(HEIGHT * 0.8)
        .include_y(0.0)
        .include_y(100.0)
        .y_grid_spacer(percent_marks())
        .x_axis_label("blocks removed")
        .y_axis_label("test error %")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.line(Line::new("mean", PlotPoints::new(mean.clone())).color(BARS).width(2.0));
            plot.points(Points::new("mean", PlotPoints::new(mean)).color(BARS).radius(3.0));
            for band in [upper, lower] {
                plot.line(Line::new("± std", PlotPoints::new(band)).color(BARS.gamma_multiply(0.5)).style(LineStyle::dashed_dense()));
            }
        });
}

/// Marks on a test-error axis every 5 %, 25 % and 50 % (egui_plot's
/// default, powers of ten, labelled only 0 and 100 on these short plots).
fn percent_marks() -> impl Fn(egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    egui_plot::uniform_grid_spacer(|_| [5.0, 25.0, 50.0])
}

/// Gradient per path and in all per path length (log y).
pub fn paths_ui(ui: &mut egui::Ui, report: &PathsReport, side: usize) {
    let (lo, hi) = report.effective_range(0.9);
    // Whether one path's gradient falls with length, read from the data.
    let per: Vec<f64> = report.lengths.iter().map(|l| l.grad_per_path).filter(|v| v.is_finite() && *v > 0.0).collect();
    let trend = match (per.first(), per.last()) {
        (Some(first), Some(last)) if per.len() > 1 && last < first => {
            format!("one path's gradient falls {:.1}x from the shortest path to the longest", first / last)
        }
        (Some(_), Some(_)) if per.len() > 1 => "one path's gradient does not fall with its length here".to_string(),
        _ => String::new(),
    };
    ui.label(format!(
        "{} residual blocks ({}). Paths of length {lo} to {hi} carry 90% of the gradient reaching the input; {trend}.",
        report.blocks,
        if report.trained { "trained weights" } else { "at initialisation" }
    ));
    let finite = |v: f64| v.is_finite() && v > 0.0;
    let per_path: Vec<[f64; 2]> =
        report.lengths.iter().filter(|l| finite(l.grad_per_path)).map(|l| [l.length as f64, log10(l.grad_per_path)]).collect();
    let total: Vec<[f64; 2]> = report.lengths.iter().filter(|l| finite(l.total)).map(|l| [l.length as f64, log10(l.total)]).collect();
    log_plot(&format!("paths-{side}"), "path length (residual branches passed)", "gradient norm").height(HEIGHT).allow_scroll(false).show(
        ui,
        |plot| {
            plot.line(Line::new("one path", PlotPoints::new(per_path.clone())).color(BARS).width(2.0));
            plot.points(Points::new("one path", PlotPoints::new(per_path)).color(BARS).radius(3.0));
            plot.line(Line::new("all paths of the length (× C(n, k))", PlotPoints::new(total.clone())).color(TOTALS).width(2.0));
            plot.points(Points::new("all paths of the length (× C(n, k))", PlotPoints::new(total)).color(TOTALS).radius(3.0));
        },
    );
    legend(ui, &[(BARS, "one path"), (TOTALS, "all paths of that length (× C(n, k))")]);
}

fn legend(ui: &mut egui::Ui, entries: &[(Color32, &str)]) {
    ui.horizontal_wrapped(|ui| {
        for (color, name) in entries {
            legend_entry(ui, *color, name);
        }
    });
}

/// The loss over the (α, β) plane as colour (log scale), the trained point
/// at the centre, and the line from the initial weights.
pub fn landscape_ui(ui: &mut egui::Ui, landscape: &Landscape, side: usize, texture: &mut Option<(usize, egui::TextureHandle)>) {
    ui.label(format!(
        "Loss {:.3} at the trained weights, {:.3} on average at the corners ({} training images).",
        landscape.centre_loss, landscape.corner_mean, landscape.subset
    ));
    let n = landscape.alphas.len();
    let logs: Vec<f64> = landscape.loss.iter().flatten().map(|l| if l.is_finite() && *l > 0.0 { l.log10() } else { f64::NAN }).collect();
    let lo = logs.iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
    let hi = logs.iter().copied().filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
    if n == 0 || !lo.is_finite() {
        ui.weak("No finite loss on the grid.");
        return;
    }
    let key = n * 1_000_003 + landscape.loss.len();
    if texture.as_ref().is_none_or(|(k, _)| *k != key) {
        // Row 0 of the image is the top: the largest β.
        let mut image = ColorImage::filled([n, landscape.betas.len()], Color32::BLACK);
        for (i, row) in landscape.loss.iter().enumerate() {
            for (j, _) in row.iter().enumerate() {
                let v = logs[i * row.len() + j];
                let t = if v.is_finite() { ((v - lo) / (hi - lo).max(1e-9)) as f32 } else { 1.0 };
                let y = landscape.betas.len() - 1 - j;
                image[(i, y)] = colormap(t);
            }
        }
        *texture = Some((key, ui.ctx().load_texture(format!("landscape-{side}"), image, TextureOptions::LINEAR)));
    }
    let Some((_, handle)) = texture.as_ref() else { return };
    let (a0, a1) = (landscape.alphas[0], landscape.alphas[n - 1]);
    let (b0, b1) = (landscape.betas[0], landscape.betas.last().copied().unwrap_or(1.0));
    let response = Plot::new(("landscape", side))
        .height(HEIGHT * 1.2)
        .data_aspect(1.0)
        .x_axis_label("α (direction δ)")
        .y_axis_label("β (direction η)")
        .allow_scroll(false)
        .show_grid(false)
        .show(ui, |plot| {
            let centre = PlotPoint::new((a0 + a1) / 2.0, (b0 + b1) / 2.0);
            plot.image(PlotImage::new("loss", handle.id(), centre, Vec2::new((a1 - a0) as f32, (b1 - b0) as f32)));
            plot.points(
                Points::new("trained weights", PlotPoints::new(vec![[0.0, 0.0]]))
                    .shape(MarkerShape::Cross)
                    .radius(8.0)
                    .color(Color32::WHITE),
            );
            plot.pointer_coordinate()
        });
    if let Some(p) = response.inner.filter(|_| response.response.hovered()) {
        let step = |v: f64, lo: f64, hi: f64, n: usize| ((v - lo) / (hi - lo) * (n as f64 - 1.0)).round();
        let (i, j) = (step(p.x, a0, a1, n), step(p.y, b0, b1, landscape.betas.len()));
        if i >= 0.0 && j >= 0.0 && (i as usize) < n && (j as usize) < landscape.betas.len() {
            let loss = landscape.loss[i as usize][j as usize];
            response.response.on_hover_text_at_pointer(format!("α {:.2}, β {:.2}\nloss {loss:.4}", p.x, p.y));
        }
    }
    ui.weak(format!("colour: log10 loss from {:.3} (dark) to {:.3} (bright); × the trained weights", 10f64.powf(lo), 10f64.powf(hi)));
    let line = &landscape.interpolation;
    if line.t.is_empty() {
        return;
    }
    let points: Vec<[f64; 2]> =
        line.t.iter().zip(&line.loss).filter(|(_, l)| l.is_finite() && **l > 0.0).map(|(t, l)| [*t, log10(*l)]).collect();
    log_plot(&format!("interpolation-{side}"), "t (0: initial weights, 1: trained)", "loss").height(HEIGHT * 0.7).allow_scroll(false).show(
        ui,
        |plot| {
            plot.line(Line::new("from initial to trained", PlotPoints::new(points)).color(TOTALS).width(2.0));
        },
    );
}
