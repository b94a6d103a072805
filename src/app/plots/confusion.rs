//! The confusion matrix of a run's latest evaluation, painted cell by
//! cell, and its per-class test accuracy as bars.

use egui::{Color32, Vec2};
use egui_plot::{Bar, BarChart, Plot};

use super::export_menu;
use crate::app::command::AppCommand;
use crate::app::runs::RunView;
use crate::train::events::Evaluation;

/// The confusion matrix of the latest evaluation, with per-class accuracy.
pub fn confusion_ui(ui: &mut egui::Ui, run: &RunView, commands: &mut Vec<AppCommand>) {
    let Some(eval) = run.evals.iter().rev().find(|e| !e.confusion.is_empty()) else {
        ui.weak("The confusion matrix appears after the first evaluation (end of an epoch).");
        return;
    };
    matrix_ui(ui, eval, &run.class_names, commands);
    per_class_ui(ui, eval, &run.class_names, run.color, commands);
}

/// The matrix: a row per true class (named), a column per predicted class
/// (numbered), each cell shaded by its count; hover for the count.
fn matrix_ui(ui: &mut egui::Ui, eval: &Evaluation, names: &[String], commands: &mut Vec<AppCommand>) {
    let n = eval.confusion.len();
    let cell = ((ui.available_width() - 220.0) / (n as f32 + 1.0)).clamp(14.0, 34.0);
    let size = Vec2::new(cell * n as f32 + 130.0, cell * n as f32 + 34.0);
    let (response, painter) = ui.allocate_painter(size, egui::Sense::hover());
    let origin = response.rect.min + Vec2::new(120.0, 30.0);
    let max = eval.confusion.iter().flatten().copied().max().unwrap_or(1).max(1) as f32;
    let text_color = ui.visuals().text_color();
    // Columns by number (the rows name them), so any count of classes fits.
    for p in 0..n {
        painter.text(
            origin + Vec2::new((p as f32 + 0.5) * cell, -2.0),
            egui::Align2::CENTER_BOTTOM,
            p.to_string(),
            egui::FontId::proportional(10.0),
            text_color,
        );
    }
    painter.text(
        origin - Vec2::new(0.0, 28.0),
        egui::Align2::LEFT_TOP,
        "predicted →",
        egui::FontId::proportional(10.0),
        ui.visuals().weak_text_color(),
    );
    let mut hovered = None;
    for (t, row) in eval.confusion.iter().enumerate() {
        let name = match names.get(t) {
            Some(name) => format!("{name} {t}"),
            None => t.to_string(),
        };
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
    export_menu(&response, "confusion", || confusion_csv(eval, names), commands);
}

/// `true_class,predicted_class,count`, one row per cell.
fn confusion_csv(eval: &Evaluation, names: &[String]) -> String {
    let mut csv = String::from("true_class,predicted_class,count\n");
    for (t, row) in eval.confusion.iter().enumerate() {
        for (p, c) in row.iter().enumerate() {
            csv.push_str(&format!("{},{},{c}\n", names.get(t).cloned().unwrap_or_default(), names.get(p).cloned().unwrap_or_default()));
        }
    }
    csv
}

/// Per-class test accuracy as bars, each class named under its bar.
fn per_class_ui(ui: &mut egui::Ui, eval: &Evaluation, names: &[String], color: Color32, commands: &mut Vec<AppCommand>) {
    let n = eval.confusion.len();
    ui.label(format!("Per-class test accuracy at step {} (overall {:.1}%)", eval.step, eval.accuracy * 100.0));
    let bars: Vec<Bar> = eval
        .per_class_accuracy
        .iter()
        .enumerate()
        .map(|(i, a)| Bar::new(i as f64, f64::from(*a) * 100.0).name(names.get(i).cloned().unwrap_or_else(|| i.to_string())).width(0.7))
        .collect();
    // Every class gets its name under its bar, cut to the room it has.
    let room = ((ui.available_width() - 60.0) / (n.max(1) as f32) / 6.5).max(1.0) as usize;
    let labels: Vec<String> = (0..n).map(|i| short_label(names.get(i).map_or(&i.to_string(), |s| s), room)).collect();
    let response = Plot::new("per-class")
        .height(150.0)
        .include_y(0.0)
        .include_y(100.0)
        .include_x(-0.5)
        .include_x(n as f64 - 0.5)
        .y_axis_label("accuracy %")
        .x_grid_spacer(move |input| {
            (0..n)
                .filter(|&i| (i as f64) >= input.bounds.0 && (i as f64) <= input.bounds.1)
                .map(|i| egui_plot::GridMark { value: i as f64, step_size: 1.0 })
                .collect()
        })
        .x_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 { labels.get(i as usize).cloned().unwrap_or_default() } else { String::new() }
        })
        .allow_scroll(false)
        .show(ui, |plot| plot.bar_chart(BarChart::new("per-class accuracy", bars).color(color)))
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

/// `name` cut to `room` characters, with an ellipsis when cut.
pub fn short_label(name: &str, room: usize) -> String {
    if name.chars().count() <= room {
        name.to_string()
    } else {
        let mut cut: String = name.chars().take(room.saturating_sub(1).max(1)).collect();
        cut.push('…');
        cut
    }
}
