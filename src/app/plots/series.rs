//! Line and bar plots of the runs: loss, accuracy, gradient norm per layer,
//! the first layer's gradient over time, and architecture probes (the
//! confusion matrix is in `confusion`).

use egui::Color32;
use egui_plot::{Bar, BarChart, HoverPosition, Legend, Line, LineStyle, Plot, PlotPoints, Points};

use super::{PlotView, export_figure_menu, export_menu, interactive, log_plot, log10, second_shade};
use crate::app::command::AppCommand;
use crate::app::runs::RunView;
use crate::report::figure::{Figure, Panel, Series};
use crate::report::sweep::seed_band;
use crate::train::RunStatus;

const PLOT_HEIGHT: f32 = 230.0;
/// Buckets a line is cut to (about one per pixel column of a wide plot).
const LINE_BUCKETS: usize = 600;

/// Keeps at most `max` points, evenly spaced (the last one always kept).
pub fn decimate<T: Copy>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max || max < 2 {
        return items.to_vec();
    }
    let stride = items.len() as f64 / (max - 1) as f64;
    let mut out: Vec<T> = (0..max - 1).map(|i| items[(i as f64 * stride) as usize]).collect();
    out.extend(items.last().copied());
    out
}

/// A line of points in x order cut to about `buckets` buckets of equal x
/// width, each keeping its first, lowest, highest and last point: a plot
/// a few hundred pixels wide draws the same picture from far fewer points,
/// and a spike stays visible (an even stride could step over it).
pub fn decimate_min_max(points: &[[f64; 2]], buckets: usize) -> Vec<[f64; 2]> {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Vec::new();
    };
    if points.len() <= 4 * buckets.max(1) || last[0] <= first[0] {
        return points.to_vec();
    }
    let width = (last[0] - first[0]) / buckets as f64;
    let bucket = |p: &[f64; 2]| (((p[0] - first[0]) / width) as usize).min(buckets - 1);
    let mut out = Vec::with_capacity(4 * buckets);
    let mut start = 0;
    while start < points.len() {
        let b = bucket(&points[start]);
        let end = points[start..].iter().position(|p| bucket(p) != b).map_or(points.len(), |n| start + n);
        let group = &points[start..end];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in group.iter().enumerate() {
            if p[1] < group[lo][1] {
                lo = i;
            }
            if p[1] > group[hi][1] {
                hi = i;
            }
        }
        let mut keep = vec![0, lo, hi, group.len() - 1];
        keep.sort_unstable();
        keep.dedup();
        out.extend(keep.into_iter().map(|i| group[i]));
        start = end;
    }
    out
}

/// One run's points on a train/test plot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainTest {
    /// The training value smoothed over the last 10 steps.
    pub train: Vec<[f64; 2]>,
    pub test: Vec<[f64; 2]>,
    /// Where the curve ends when the values stop being finite (a diverged
    /// run): drawn as a marker, never as an axis bound.
    pub ends_at: Option<[f64; 2]>,
}

/// The points of one run; `y` maps a value to the plot's y. Only finite
/// points are kept (a NaN or an infinity, or a log of 0, would stretch the
/// axes of every run on the plot); the smoothing restarts after one.
pub fn train_test_points(
    steps: &[crate::train::events::StepMetrics],
    evals: &[crate::train::events::Evaluation],
    train_value: impl Fn(&crate::train::events::StepMetrics) -> f64,
    test_value: impl Fn(&crate::train::events::Evaluation) -> f64,
    y: impl Fn(f64) -> f64,
) -> TrainTest {
    const WINDOW: usize = 10;
    let mut window: std::collections::VecDeque<f64> = std::collections::VecDeque::with_capacity(WINDOW);
    let mut train = Vec::with_capacity(steps.len());
    let mut broken = false;
    for s in steps {
        let value = train_value(s);
        if !value.is_finite() {
            broken = true;
            window.clear();
            continue;
        }
        if window.len() == WINDOW {
            window.pop_front();
        }
        window.push_back(value);
        let point = [s.step as f64, y(window.iter().sum::<f64>() / window.len() as f64)];
        if point[1].is_finite() {
            train.push(point);
        } else {
            broken = true;
        }
    }
    let test: Vec<[f64; 2]> = evals
        .iter()
        .map(|e| (e.step as f64, test_value(e)))
        .filter(|(_, v)| v.is_finite())
        .map(|(step, v)| [step, y(v)])
        .filter(|p| p[1].is_finite())
        .collect();
    let ends_at = if broken { train.last().copied() } else { None };
    TrainTest { train, test, ends_at }
}

/// The y range the healthy runs span (runs that did not diverge), or
/// `None` when every run diverged.
fn healthy_range(all: &[(bool, &TrainTest)]) -> Option<(f64, f64)> {
    let ys = all.iter().filter(|(diverged, _)| !diverged).flat_map(|(_, p)| p.train.iter().chain(&p.test).map(|q| q[1]));
    ys.fold(None, |range, y| Some(range.map_or((y, y), |(lo, hi): (f64, f64)| (lo.min(y), hi.max(y)))))
}

/// A diverged run's points within the healthy runs' range, so its blow-up
/// never sets the axes the others are read on; its cross marks where it
/// left the range (at the top edge when it never was inside).
pub fn clip_diverged(points: &mut TrainTest, range: (f64, f64), first_x: f64) {
    let pad = (range.1 - range.0).abs().max(1e-6) * 0.05;
    let inside = |p: &[f64; 2]| p[1] >= range.0 - pad && p[1] <= range.1 + pad;
    let cut = points.train.iter().position(|p| !inside(p)).unwrap_or(points.train.len());
    points.train.truncate(cut);
    points.test.retain(inside);
    points.ends_at = Some(points.train.last().copied().unwrap_or([first_x, range.1]));
}

/// A line of the loss or accuracy plot: one run, or runs that differ only
/// by seed as their mean, with the seeds' spread (one standard deviation)
/// as a band along the training curve and bars on the test points. Values
/// are in the plot's units before any log.
#[derive(Clone, Debug, Default)]
pub struct Curve {
    pub label: String,
    pub color: Color32,
    pub points: TrainTest,
    /// The seeds' standard deviation at each training and test point
    /// (empty for one run).
    pub train_spread: Vec<f64>,
    pub test_spread: Vec<f64>,
    pub diverged: bool,
    /// Where the first run's steps start (a diverged run's cross when it
    /// never was in range).
    pub first_step: f64,
}

/// The curves of `runs` grouped as `groups` says (indices into `runs`;
/// see [`crate::app::run_labels::seed_groups`]).
pub fn curves(
    runs: &[&RunView],
    groups: &[Vec<usize>],
    train_value: impl Fn(&crate::train::events::StepMetrics) -> f64,
    test_value: impl Fn(&crate::train::events::Evaluation) -> f64,
) -> Vec<Curve> {
    groups
        .iter()
        .filter(|g| !g.is_empty())
        .map(|group| {
            let first = runs[group[0]];
            let members: Vec<TrainTest> =
                group.iter().map(|&i| train_test_points(&runs[i].steps, &runs[i].evals, &train_value, &test_value, |v| v)).collect();
            let first_step = first.steps.first().map_or(0.0, |s| s.step as f64);
            let label = crate::app::run_labels::seed_group_label(first, group.len());
            if members.len() == 1 {
                let points = members.into_iter().next().unwrap_or_default();
                let diverged = first.status == RunStatus::Diverged || points.ends_at.is_some();
                return Curve { label, color: first.color, points, diverged, first_step, ..Curve::default() };
            }
            let band = |part: fn(&TrainTest) -> &[[f64; 2]]| seed_band(&members.iter().map(part).collect::<Vec<_>>());
            let (train, test) = (band(|m| &m.train), band(|m| &m.test));
            Curve {
                label,
                color: first.color,
                points: TrainTest { train: train.mean, test: test.mean, ends_at: None },
                train_spread: train.std,
                test_spread: test.std,
                diverged: false,
                first_step,
            }
        })
        .collect()
}

/// The curves on a plot (log10 of the values when `log_y`): the smoothed
/// training curve solid, test points dashed in the same colour under the
/// same label, a cross where a diverged curve ends, and a seed group's
/// spread.
fn train_test_lines(plot: &mut egui_plot::PlotUi<'_>, curves: Vec<Curve>, log_y: bool) {
    let y = |v: f64| if log_y { log10(v) } else { v };
    let to_plot = |points: &[[f64; 2]]| -> Vec<[f64; 2]> { points.iter().map(|&[x, v]| [x, y(v)]).filter(|p| p[1].is_finite()).collect() };
    let mut all: Vec<(bool, TrainTest)> = curves
        .iter()
        .map(|c| {
            (
                c.diverged,
                TrainTest {
                    train: to_plot(&c.points.train),
                    test: to_plot(&c.points.test),
                    ends_at: c.points.ends_at.map(|[x, v]| [x, y(v)]),
                },
            )
        })
        .collect();
    let range = healthy_range(&all.iter().map(|(d, p)| (*d, p)).collect::<Vec<_>>());
    for (curve, (diverged, points)) in curves.iter().zip(&mut all) {
        if let (true, Some(range)) = (*diverged, range) {
            clip_diverged(points, range, curve.first_step);
        }
        let points = std::mem::take(points);
        let name = curve.label.clone();
        if !curve.train_spread.is_empty() {
            let train = decimate_min_max(&curve.points.train, LINE_BUCKETS);
            let spread = decimate_spread(&curve.points.train, &curve.train_spread, &train);
            crate::report::figure::band(plot, &name, &train, &spread, curve.color, log_y);
            crate::report::figure::error_bars(plot, &name, &curve.points.test, &curve.test_spread, curve.color, log_y);
        }
        plot.line(Line::new(name.clone(), PlotPoints::new(decimate_min_max(&points.train, LINE_BUCKETS))).color(curve.color).width(1.5));
        if !points.test.is_empty() {
            plot.line(Line::new(name.clone(), PlotPoints::new(points.test.clone())).color(curve.color).style(LineStyle::dashed_loose()));
            plot.points(Points::new(name.clone(), PlotPoints::new(points.test)).color(curve.color).radius(3.0));
        }
        if let Some(end) = points.ends_at {
            plot.points(Points::new(name, PlotPoints::new(vec![end])).color(curve.color).shape(egui_plot::MarkerShape::Cross).radius(7.0));
        }
    }
}

/// The spread at each of `kept` (points chosen from `points`, in order).
fn decimate_spread(points: &[[f64; 2]], spread: &[f64], kept: &[[f64; 2]]) -> Vec<f64> {
    let mut i = 0;
    kept.iter()
        .map(|k| {
            while i < points.len() && points[i] != *k {
                i += 1;
            }
            spread.get(i).copied().unwrap_or(0.0)
        })
        .collect()
}

/// The same curves as a panel of a figure (for Export PNG): train solid,
/// test dashed, a seed group's spread as a band and bars, the legend under
/// the plot.
fn train_test_panel(title: &str, y_label: &str, log_y: bool, curves: Vec<Curve>) -> Panel {
    let mut panel = Panel::new(title, "step", y_label, log_y).legend_below();
    for curve in curves {
        let kept = decimate(&curve.points.train, 2000);
        let mut train = Series::new(curve.label.clone(), kept.clone(), curve.color).without_markers();
        if !curve.train_spread.is_empty() {
            train = train.with_band(decimate_spread(&curve.points.train, &curve.train_spread, &kept));
        }
        panel = panel.with(train);
        if !curve.points.test.is_empty() {
            panel = panel.with(Series::new(curve.label, curve.points.test, curve.color).dashed().with_spread(curve.test_spread));
        }
    }
    panel
}

fn figure(panel: Panel, caption: &str) -> Figure {
    Figure { title: panel.title.clone(), caption: caption.to_string(), panels: vec![panel], columns: 1 }
}

/// Shows a plot and keeps the bounds it was drawn with.
fn show_plot(
    ui: &mut egui::Ui,
    plot: Plot<'_>,
    id: &str,
    view: &mut PlotView,
    draw: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) -> egui::Response {
    let shown = interactive(plot, view).show(ui, draw);
    view.bounds.insert(id.to_string(), *shown.transform.bounds());
    shown.response
}

/// Train loss (smoothed over 10 steps) and test loss (per evaluation), log
/// y; `groups` as [`curves`] takes them.
pub fn loss_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], groups: &[Vec<usize>], view: &mut PlotView, commands: &mut Vec<AppCommand>) {
    let lines = || curves(runs, groups, |s| f64::from(s.loss), |e| f64::from(e.loss));
    let plot = log_plot("loss", "step", "loss").height(PLOT_HEIGHT);
    let response = show_plot(ui, plot, "loss", view, |plot| train_test_lines(plot, lines(), true));
    export_figure_menu(
        &response,
        "loss",
        || metrics_csv(runs),
        || {
            figure(
                train_test_panel("Loss", "loss", true, lines()),
                &caption("Training loss (smoothed over 10 steps, solid) and test loss (dashed).", groups),
            )
        },
        commands,
    );
}

/// A figure's caption, with what a seed group's band means when there is one.
fn caption(text: &str, groups: &[Vec<usize>]) -> String {
    if groups.iter().any(|g| g.len() > 1) {
        format!("{text} Runs that differ only by seed: their mean, shaded ± one standard deviation.")
    } else {
        text.to_string()
    }
}

fn metrics_csv(runs: &[&RunView]) -> String {
    let mut csv = String::from("run,step,epoch,split,loss,accuracy,lr\n");
    for run in runs {
        for s in &run.steps {
            csv.push_str(&format!("{},{},{},train,{},{},{}\n", run.label, s.step, s.epoch, s.loss, s.accuracy, s.lr));
        }
        for e in &run.evals {
            csv.push_str(&format!("{},{},{},test,{},{},\n", run.label, e.step, e.epoch, e.loss, e.accuracy));
        }
    }
    csv
}

/// Train accuracy (smoothed) and test accuracy per evaluation.
pub fn accuracy_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], groups: &[Vec<usize>], view: &mut PlotView, commands: &mut Vec<AppCommand>) {
    let lines = || curves(runs, groups, |s| 100.0 * f64::from(s.accuracy), |e| 100.0 * f64::from(e.accuracy));
    let plot = Plot::new("accuracy")
        .height(PLOT_HEIGHT)
        .x_axis_label("step")
        .y_axis_label("accuracy %")
        .include_y(0.0)
        .include_y(100.0)
        .label_formatter(|position: &HoverPosition<'_>| match position {
            HoverPosition::NearDataPoint { plot_name, position, .. } => {
                Some(format!("{plot_name}\nstep {:.0}\naccuracy {:.2}%", position.x, position.y))
            }
            HoverPosition::Elsewhere { .. } => None,
        });
    let response = show_plot(ui, plot, "accuracy", view, |plot| train_test_lines(plot, lines(), false));
    let panel = || train_test_panel("Accuracy", "accuracy %", false, lines()).including_y(0.0).including_y(100.0);
    export_figure_menu(
        &response,
        "accuracy",
        || metrics_csv(runs),
        || figure(panel(), &caption("Training accuracy (smoothed over 10 steps, solid) and test accuracy (dashed).", groups)),
        commands,
    );
}

/// One gradient series of a run: (x, norm) points for ∂L/∂output or ∂L/∂W.
type GradientSeries<'a> = dyn Fn(&RunView, bool) -> Vec<[f64; 2]> + 'a;

/// Lines of ∂L/∂output (solid) and ∂L/∂W (dashed, a darker shade) per run.
fn gradient_lines(plot: &mut egui_plot::PlotUi<'_>, runs: &[&RunView], show: [bool; 2], points: &GradientSeries<'_>) {
    for run in runs {
        for (output, on) in [(true, show[0]), (false, show[1])] {
            if !on {
                continue;
            }
            // A zero or non-finite norm (a diverged run) has no place on a log axis.
            let finite: Vec<[f64; 2]> = points(run, output).into_iter().filter(|[_, v]| v.is_finite() && *v > 0.0).collect();
            let log: Vec<[f64; 2]> = decimate_min_max(&finite, LINE_BUCKETS).into_iter().map(|[x, v]| [x, log10(v)]).collect();
            let name = format!("{} {}", run.label, if output { "∂L/∂output" } else { "∂L/∂W" });
            let line = Line::new(name.clone(), PlotPoints::new(log.clone()));
            if output {
                plot.line(line.color(run.color).width(2.0));
                if log.len() <= 120 {
                    plot.points(Points::new(name, PlotPoints::new(log)).color(run.color).radius(2.5));
                }
            } else {
                plot.line(line.color(second_shade(run.color)).style(LineStyle::dashed_dense()).width(1.5));
            }
        }
    }
}

/// The same gradient lines as a figure panel (for Export PNG).
fn gradient_panel(title: &str, x_label: &str, runs: &[&RunView], show: [bool; 2], points: &GradientSeries<'_>) -> Panel {
    let mut panel = Panel::new(title, x_label, "gradient norm", true).legend_below();
    for run in runs {
        if show[0] {
            panel = panel.with(Series::new(format!("{} ∂L/∂output", run.label), points(run, true), run.color));
        }
        if show[1] {
            panel = panel
                .with(Series::new(format!("{} ∂L/∂W", run.label), points(run, false), second_shade(run.color)).dashed().without_markers());
        }
    }
    panel
}

/// Gradient norm against layer index at each run's latest probe (log y).
pub fn gradient_layers_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], show: [bool; 2], view: &mut PlotView, commands: &mut Vec<AppCommand>) {
    let points = |run: &RunView, output: bool| -> Vec<[f64; 2]> {
        let Some(g) = run.gradients.last() else { return Vec::new() };
        let values = if output { &g.output } else { &g.weight };
        values.iter().enumerate().map(|(i, v)| [(i + 1) as f64, f64::from(*v)]).collect()
    };
    let plot = log_plot("gradient-layers", "layer", "gradient norm").height(PLOT_HEIGHT);
    let response = show_plot(ui, plot, "gradient-layers", view, |plot| gradient_lines(plot, runs, show, &points));
    export_figure_menu(
        &response,
        "gradient-per-layer",
        || {
            let mut csv = String::from("run,step,layer_index,layer_name,weight_grad_norm,output_grad_norm\n");
            for run in runs {
                if let Some(g) = run.gradients.last() {
                    for (i, (w, o)) in g.weight.iter().zip(&g.output).enumerate() {
                        let name = run.layer_names.get(i).map(String::as_str).unwrap_or("");
                        csv.push_str(&format!("{},{},{},{},{w},{o}\n", run.label, g.step, i + 1, name));
                    }
                }
            }
            csv
        },
        || {
            figure(
                gradient_panel("Gradient norm per layer (latest probe)", "layer", runs, show, &points),
                "Layer 1 is the first block with weights.",
            )
        },
        commands,
    );
}

/// The first layer's gradient norm at every probe (log y).
pub fn first_layer_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], show: [bool; 2], view: &mut PlotView, commands: &mut Vec<AppCommand>) {
    let points = |run: &RunView, output: bool| -> Vec<[f64; 2]> {
        run.gradients
            .iter()
            .filter_map(|g| (if output { g.output.first() } else { g.weight.first() }).map(|v| [g.step as f64, f64::from(*v)]))
            .collect()
    };
    let plot = log_plot("first-layer", "step", "first-layer gradient").height(PLOT_HEIGHT);
    let response = show_plot(ui, plot, "first-layer", view, |plot| gradient_lines(plot, runs, show, &points));
    export_figure_menu(
        &response,
        "first-layer-gradient",
        || {
            let mut csv = String::from("run,step,weight_grad_norm,output_grad_norm\n");
            for run in runs {
                for g in &run.gradients {
                    csv.push_str(&format!(
                        "{},{},{},{}\n",
                        run.label,
                        g.step,
                        g.weight.first().copied().unwrap_or(f32::NAN),
                        g.output.first().copied().unwrap_or(f32::NAN)
                    ));
                }
            }
            csv
        },
        || {
            figure(
                gradient_panel("First layer's gradient over training", "step", runs, show, &points),
                "The gradient reaching the first block at every probe.",
            )
        },
        commands,
    );
}

/// Architecture probes of one run: highway gate means per layer, how often
/// stochastic depth dropped each block, which fractal paths drop-path kept.
pub fn probes_plot_ui(ui: &mut egui::Ui, run: &RunView, commands: &mut Vec<AppCommand>) {
    let has = |name: &str| run.probes.iter().any(|p| p.values.iter().any(|v| v.name == name));
    let (gates, dropped, fractal) = (has("transform_gate_mean"), has("dropped"), has("paths_kept") || has("global_column"));
    if !(gates || dropped || fractal) {
        ui.weak("This network has no highway gates, stochastic depth or fractal drop-path to probe.");
        return;
    }
    let csv = || {
        let mut csv = String::from("step,layer_index,layer_name,probe,value\n");
        for p in &run.probes {
            for v in &p.values {
                let name = run.layer_names.get(v.layer).map(String::as_str).unwrap_or("");
                csv.push_str(&format!("{},{},{},{},{}\n", p.step, v.layer + 1, name, v.name, v.value));
            }
        }
        csv
    };
    if gates {
        ui.label("Mean transform gate T per highway layer (latest probe; 0 = carry the input, 1 = transform)");
        let latest = run.latest_probes();
        let points: Vec<[f64; 2]> =
            latest.iter().filter(|v| v.name == "transform_gate_mean").map(|v| [(v.layer + 1) as f64, f64::from(v.value)]).collect();
        let response = Plot::new("gates")
            .height(PLOT_HEIGHT * 0.8)
            .allow_scroll(false)
            .include_y(0.0)
            .include_y(1.0)
            .x_axis_label("layer")
            .y_axis_label("mean T")
            .show(ui, |plot| {
                plot.line(Line::new("mean T", PlotPoints::new(points.clone())).color(run.color).width(2.0));
                plot.points(Points::new("mean T", PlotPoints::new(points)).color(run.color).radius(3.0));
            })
            .response;
        export_menu(&response, "probes", csv, commands);
    } else if dropped {
        ui.label("How often stochastic depth dropped each residual block (all probes so far)");
        let mut counts: std::collections::BTreeMap<usize, (f32, f32)> = Default::default();
        for p in &run.probes {
            for v in p.values.iter().filter(|v| v.name == "dropped") {
                let entry = counts.entry(v.layer).or_default();
                entry.0 += v.value;
                entry.1 += 1.0;
            }
        }
        let bars: Vec<Bar> =
            counts.iter().map(|(&layer, &(d, n))| Bar::new((layer + 1) as f64, f64::from(d / n.max(1.0))).width(0.8)).collect();
        let response = Plot::new("dropped")
            .height(PLOT_HEIGHT * 0.8)
            .allow_scroll(false)
            .include_y(0.0)
            .include_y(1.0)
            .x_axis_label("layer")
            .y_axis_label("fraction dropped")
            .show(ui, |plot| plot.bar_chart(BarChart::new("dropped", bars).color(run.color)))
            .response;
        export_menu(&response, "probes", csv, commands);
    } else {
        ui.label("Fractal drop-path per batch: fraction of join inputs kept (local) and the column kept alone (global)");
        let kept: Vec<[f64; 2]> = run
            .probes
            .iter()
            .flat_map(|p| p.values.iter().filter(|v| v.name == "paths_kept").map(move |v| [p.step as f64, f64::from(v.value)]))
            .collect();
        let columns: Vec<[f64; 2]> = run
            .probes
            .iter()
            .flat_map(|p| p.values.iter().filter(|v| v.name == "global_column").map(move |v| [p.step as f64, f64::from(v.value)]))
            .collect();
        let response = Plot::new("fractal-paths")
            .height(PLOT_HEIGHT * 0.8)
            .allow_scroll(false)
            .legend(Legend::default())
            .include_y(0.0)
            .x_axis_label("step")
            .show(ui, |plot| {
                plot.points(Points::new("paths kept (local)", PlotPoints::new(kept)).color(run.color).radius(2.0));
                plot.points(
                    Points::new("column kept (global)", PlotPoints::new(columns)).color(Color32::from_rgb(250, 190, 80)).radius(3.0),
                );
            })
            .response;
        export_menu(&response, "probes", csv, commands);
    }
}

#[cfg(test)]
mod tests {
    use super::train_test_points;
    use crate::app::plots::log10;
    use crate::train::events::{Evaluation, StepMetrics};

    fn step(step: usize, loss: f32) -> StepMetrics {
        StepMetrics { step, epoch: 0, loss, accuracy: 0.5, lr: 0.1, images_per_sec: 0.0, elapsed_secs: 0.0, batch_digest: 0 }
    }

    fn eval(step: usize, loss: f32) -> Evaluation {
        Evaluation { step, epoch: 0, loss, accuracy: 0.5, per_class_accuracy: Vec::new(), confusion: Vec::new(), elapsed_secs: 0.0 }
    }

    /// Thousands of points become a few per bucket; a one-step spike and
    /// both ends survive.
    #[test]
    fn min_max_decimation_keeps_spikes_and_ends() {
        let mut points: Vec<[f64; 2]> = (0..100_000).map(|i| [i as f64, 1.0 + (i % 7) as f64 * 0.01]).collect();
        points[54_321][1] = 50.0;
        points[77_777][1] = -3.0;
        let kept = super::decimate_min_max(&points, 600);
        assert!(kept.len() <= 4 * 600, "{}", kept.len());
        assert!(kept.contains(&[54_321.0, 50.0]) && kept.contains(&[77_777.0, -3.0]));
        assert_eq!((kept[0], *kept.last().unwrap()), (points[0], points[99_999]));
        assert!(kept.windows(2).all(|w| w[0][0] < w[1][0]), "in x order");
        // Short lines are left as they are.
        assert_eq!(super::decimate_min_max(&points[..1000], 600), points[..1000].to_vec());
    }

    /// A diverged run's NaN and infinities never reach the plot (they would
    /// set the log axis of every run on it); its curve ends with a marker.
    #[test]
    fn a_diverged_run_gives_only_finite_points_and_an_end_marker() {
        let steps = [step(0, 2.0), step(1, 1.5), step(2, 1e4), step(3, f32::INFINITY), step(4, f32::NAN)];
        let evals = [eval(2, 1.2), eval(4, f32::NAN)];
        let points = train_test_points(&steps, &evals, |s| f64::from(s.loss), |e| f64::from(e.loss), log10);
        assert!(points.train.iter().chain(&points.test).all(|p| p[0].is_finite() && p[1].is_finite()), "{points:?}");
        assert_eq!(points.train.len(), 3, "steps 0-2; the infinite and NaN values are left out (log10 would map NaN to 1e-30)");
        assert_eq!(points.test, vec![[2.0, log10(f64::from(1.2f32))]]);
        assert_eq!(points.ends_at, Some(points.train[2]));
        // Beside a healthy run, the diverged run's blow-up is cut off at the
        // healthy range and its cross sits where it left it.
        let mut diverged = points.clone();
        super::clip_diverged(&mut diverged, (log10(1.0), log10(2.0)), 0.0);
        assert_eq!(diverged.train.len(), 2, "{diverged:?}");
        assert_eq!(diverged.ends_at, Some(diverged.train[1]));
        let mut gone = super::TrainTest { train: vec![[0.0, 3.0]], test: vec![], ends_at: None };
        super::clip_diverged(&mut gone, (0.0, 1.0), 0.0);
        assert_eq!((gone.train.len(), gone.ends_at), (0, Some([0.0, 1.0])), "never inside: the cross at the top edge");
        // A healthy run has no marker and every point.
        let healthy = [step(0, 2.0), step(1, 1.0)];
        let points = train_test_points(&healthy, &[], |s| f64::from(s.loss), |e| f64::from(e.loss), log10);
        assert_eq!((points.train.len(), points.ends_at), (2, None));
    }
}
