//! Line and bar plots of the runs: loss, accuracy, gradient norm per layer,
//! the first layer's gradient over time, architecture probes, and the
//! confusion matrix with per-class accuracy.

use egui::{Color32, Vec2};
use egui_plot::{Bar, BarChart, Legend, Line, LineStyle, Plot, PlotPoints, Points};

use super::{export_menu, log_plot, log10, second_shade};
use crate::app::command::AppCommand;
use crate::app::runs::RunView;

const PLOT_HEIGHT: f32 = 230.0;

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

/// One run's points on a train/test plot.
#[derive(Debug, Default, PartialEq)]
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

/// For each run: its smoothed training curve (solid), test points (dashed,
/// same colour) under one legend entry, and a cross where a diverged
/// curve ends.
fn train_test_lines(
    plot: &mut egui_plot::PlotUi<'_>,
    runs: &[&RunView],
    train_value: impl Fn(&crate::train::events::StepMetrics) -> f64,
    test_value: impl Fn(&crate::train::events::Evaluation) -> f64,
    y: impl Fn(f64) -> f64,
) {
    for run in runs {
        let points = train_test_points(&run.steps, &run.evals, &train_value, &test_value, &y);
        // One name per run: egui_plot gives items of one name one legend entry.
        let name = run.name.clone();
        plot.line(Line::new(name.clone(), PlotPoints::new(decimate(&points.train, 2000))).color(run.color).width(1.5));
        if !points.test.is_empty() {
            plot.line(Line::new(name.clone(), PlotPoints::new(points.test.clone())).color(run.color).style(LineStyle::dashed_loose()));
            plot.points(Points::new(name.clone(), PlotPoints::new(points.test)).color(run.color).radius(3.0));
        }
        if let Some(end) = points.ends_at {
            plot.points(Points::new(name, PlotPoints::new(vec![end])).color(run.color).shape(egui_plot::MarkerShape::Cross).radius(7.0));
        }
    }
}

/// Train loss (smoothed over 10 steps) and test loss (per evaluation), log y.
pub fn loss_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], commands: &mut Vec<AppCommand>) {
    let response = log_plot("loss", "step", "loss")
        .legend(Legend::default())
        .height(PLOT_HEIGHT)
        .show(ui, |plot| train_test_lines(plot, runs, |s| f64::from(s.loss), |e| f64::from(e.loss), log10))
        .response;
    export_menu(&response, "loss", || metrics_csv(runs), commands);
}

fn metrics_csv(runs: &[&RunView]) -> String {
    let mut csv = String::from("run,step,epoch,split,loss,accuracy,lr\n");
    for run in runs {
        for s in &run.steps {
            csv.push_str(&format!("{},{},{},train,{},{},{}\n", run.name, s.step, s.epoch, s.loss, s.accuracy, s.lr));
        }
        for e in &run.evals {
            csv.push_str(&format!("{},{},{},test,{},{},\n", run.name, e.step, e.epoch, e.loss, e.accuracy));
        }
    }
    csv
}

/// Train accuracy (smoothed) and test accuracy per evaluation.
pub fn accuracy_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], commands: &mut Vec<AppCommand>) {
    let response = Plot::new("accuracy")
        .legend(Legend::default())
        .height(PLOT_HEIGHT)
        .x_axis_label("step")
        .y_axis_label("accuracy %")
        .include_y(0.0)
        .include_y(100.0)
        .show(ui, |plot| train_test_lines(plot, runs, |s| f64::from(s.accuracy), |e| f64::from(e.accuracy), |a| 100.0 * a))
        .response;
    export_menu(&response, "accuracy", || metrics_csv(runs), commands);
}

/// Gradient norm against layer index at each run's latest probe (log y).
pub fn gradient_layers_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], show_output: bool, show_weight: bool, commands: &mut Vec<AppCommand>) {
    let response = log_plot("gradient-layers", "layer", "gradient norm")
        .legend(Legend::default())
        .height(PLOT_HEIGHT)
        .show(ui, |plot| {
            for run in runs {
                let Some(g) = run.gradients.last() else { continue };
                if show_output {
                    let points: Vec<[f64; 2]> = g.output.iter().enumerate().map(|(i, v)| [(i + 1) as f64, log10(f64::from(*v))]).collect();
                    plot.line(Line::new(format!("{} ∂L/∂output", run.name), PlotPoints::new(points.clone())).color(run.color).width(2.0));
                    if points.len() <= 120 {
                        plot.points(Points::new(format!("{} ∂L/∂output", run.name), PlotPoints::new(points)).color(run.color).radius(2.5));
                    }
                }
                if show_weight {
                    let points: Vec<[f64; 2]> = g.weight.iter().enumerate().map(|(i, v)| [(i + 1) as f64, log10(f64::from(*v))]).collect();
                    plot.line(
                        Line::new(format!("{} ∂L/∂W", run.name), PlotPoints::new(points))
                            .color(second_shade(run.color))
                            .style(LineStyle::dashed_dense())
                            .width(1.5),
                    );
                }
            }
        })
        .response;
    export_menu(
        &response,
        "gradient-per-layer",
        || {
            let mut csv = String::from("run,step,layer_index,layer_name,weight_grad_norm,output_grad_norm\n");
            for run in runs {
                if let Some(g) = run.gradients.last() {
                    for (i, (w, o)) in g.weight.iter().zip(&g.output).enumerate() {
                        let name = run.layer_names.get(i).map(String::as_str).unwrap_or("");
                        csv.push_str(&format!("{},{},{},{},{w},{o}\n", run.name, g.step, i + 1, name));
                    }
                }
            }
            csv
        },
        commands,
    );
}

/// The first layer's gradient norm at every probe (log y).
pub fn first_layer_plot_ui(ui: &mut egui::Ui, runs: &[&RunView], show_output: bool, show_weight: bool, commands: &mut Vec<AppCommand>) {
    let response = log_plot("first-layer", "step", "first-layer gradient")
        .legend(Legend::default())
        .height(PLOT_HEIGHT)
        .show(ui, |plot| {
            for run in runs {
                if show_output {
                    let points: Vec<[f64; 2]> =
                        run.gradients.iter().filter_map(|g| g.output.first().map(|v| [g.step as f64, log10(f64::from(*v))])).collect();
                    plot.line(
                        Line::new(format!("{} ∂L/∂output", run.name), PlotPoints::new(decimate(&points, 2000))).color(run.color).width(1.5),
                    );
                }
                if show_weight {
                    let points: Vec<[f64; 2]> =
                        run.gradients.iter().filter_map(|g| g.weight.first().map(|v| [g.step as f64, log10(f64::from(*v))])).collect();
                    plot.line(
                        Line::new(format!("{} ∂L/∂W", run.name), PlotPoints::new(decimate(&points, 2000)))
                            .color(second_shade(run.color))
                            .style(LineStyle::dashed_dense()),
                    );
                }
            }
        })
        .response;
    export_menu(
        &response,
        "first-layer-gradient",
        || {
            let mut csv = String::from("run,step,weight_grad_norm,output_grad_norm\n");
            for run in runs {
                for g in &run.gradients {
                    csv.push_str(&format!(
                        "{},{},{},{}\n",
                        run.name,
                        g.step,
                        g.weight.first().copied().unwrap_or(f32::NAN),
                        g.output.first().copied().unwrap_or(f32::NAN)
                    ));
                }
            }
            csv
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

/// The confusion matrix of the latest evaluation, with per-class accuracy.
pub fn confusion_ui(ui: &mut egui::Ui, run: &RunView, commands: &mut Vec<AppCommand>) {
    let Some(eval) = run.evals.iter().rev().find(|e| !e.confusion.is_empty()) else {
        ui.weak("The confusion matrix appears after the first evaluation (end of an epoch).");
        return;
    };
    let n = eval.confusion.len();
    let names = &run.class_names;
    let cell = ((ui.available_width() - 220.0) / (n as f32 + 1.0)).clamp(14.0, 34.0);
    let size = Vec2::new(cell * n as f32 + 110.0, cell * n as f32 + 20.0);
    let (response, painter) = ui.allocate_painter(size, egui::Sense::hover());
    let origin = response.rect.min + Vec2::new(100.0, 16.0);
    let max = eval.confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f32;
    let text_color = ui.visuals().text_color();
    painter.text(
        origin - Vec2::new(0.0, 14.0),
        egui::Align2::LEFT_TOP,
        "predicted →",
        egui::FontId::proportional(10.0),
        ui.visuals().weak_text_color(),
    );
    let mut hovered = None;
    for (t, row) in eval.confusion.iter().enumerate() {
        let name = names.get(t).cloned().unwrap_or_else(|| t.to_string());
        painter.text(
            origin + Vec2::new(-4.0, (t as f32 + 0.5) * cell),
            egui::Align2::RIGHT_CENTER,
            name,
            egui::FontId::proportional(10.0),
            text_color,
        );
        for (p, &count) in row.iter().enumerate() {
            let rect = egui::Rect::from_min_size(origin + Vec2::new(p as f32 * cell, t as f32 * cell), Vec2::splat(cell - 1.0));
            let intensity = (count as f32 / max).sqrt();
            let base = if t == p { Color32::from_rgb(60, 170, 90) } else { Color32::from_rgb(220, 80, 70) };
            painter.rect_filled(rect, 1.0, Color32::from_gray(40).lerp_to_gamma(base, intensity));
            if cell >= 24.0 && count > 0 {
                painter.text(
                    rect.center(),
                    egui::Align2::CENTER_CENTER,
                    count.to_string(),
                    egui::FontId::proportional(9.0),
                    Color32::WHITE,
                );
            }
            if response.hover_pos().is_some_and(|pos| rect.contains(pos)) {
                hovered = Some((t, p, count));
            }
        }
    }
    if let Some((t, p, count)) = hovered {
        let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
        response.clone().on_hover_text(format!("true {}, predicted {}: {count}", name(t), name(p)));
    }
    let csv = || {
        let mut csv = String::from("true_class,predicted_class,count\n");
        for (t, row) in eval.confusion.iter().enumerate() {
            for (p, c) in row.iter().enumerate() {
                csv.push_str(&format!("{},{},{c}\n", names.get(t).cloned().unwrap_or_default(), names.get(p).cloned().unwrap_or_default()));
            }
        }
        csv
    };
    export_menu(&response, "confusion", csv, commands);
    ui.label(format!("Per-class test accuracy at step {} (overall {:.1}%)", eval.step, eval.accuracy * 100.0));
    let bars: Vec<Bar> = eval
        .per_class_accuracy
        .iter()
        .enumerate()
        .map(|(i, a)| Bar::new(i as f64, f64::from(*a) * 100.0).name(names.get(i).cloned().unwrap_or_else(|| i.to_string())).width(0.7))
        .collect();
    let labels = names.clone();
    let response = Plot::new("per-class")
        .height(150.0)
        .include_y(0.0)
        .include_y(100.0)
        .y_axis_label("accuracy %")
        .x_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        })
        .show(ui, |plot| plot.bar_chart(BarChart::new("per-class accuracy", bars).color(run.color)))
        .response;
    let per_class_csv = || {
        let mut csv = String::from("class,accuracy\n");
        for (i, a) in eval.per_class_accuracy.iter().enumerate() {
            csv.push_str(&format!("{},{a}\n", names.get(i).cloned().unwrap_or_default()));
        }
        csv
    };
    export_menu(&response, "per-class-accuracy", per_class_csv, commands);
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
        // A healthy run has no marker and every point.
        let healthy = [step(0, 2.0), step(1, 1.0)];
        let points = train_test_points(&healthy, &[], |s| f64::from(s.loss), |e| f64::from(e.loss), log10);
        assert_eq!((points.train.len(), points.ends_at), (2, None));
    }
}
