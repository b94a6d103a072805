//! The live plots: loss and accuracy, gradient norm per layer, the layer x
//! step heatmap, the first layer's gradient over time, architecture probes
//! and the confusion matrix. egui_plot has no log axis, so log-scaled plots
//! draw log10 values on an axis marked and labelled by decades.

pub mod boundary;
pub mod confusion;
pub mod heatmap;
pub mod series;

use std::collections::HashMap;

use egui::Color32;
use egui_plot::{Plot, PlotBounds};

// Shared with the exported figures, which sit below the window.
pub use crate::report::figure::legend_entry;
pub use crate::report::log_axis::{decade_label, log_plot, log10};

use super::command::AppCommand;
use crate::report::figure::Figure;

/// What the interactive plots share across frames: a request to return to
/// automatic bounds, and the bounds each plot was last drawn with.
#[derive(Default)]
pub struct PlotView {
    /// Set by the reset button; every plot resets once, then it clears.
    pub reset: bool,
    pub bounds: HashMap<String, PlotBounds>,
}

/// A plot of the dashboard: the mouse wheel scrolls the page (Ctrl/⌘ +
/// wheel zooms, dragging pans), no legend inside the data (the run legend
/// sits above the plots), and a reset when asked.
pub fn interactive<'a>(plot: Plot<'a>, view: &PlotView) -> Plot<'a> {
    let plot = plot.allow_scroll(false).allow_zoom(true).allow_drag(true);
    if view.reset { plot.reset() } else { plot }
}

/// The lines of the plots (a run, or runs grouped by seed), each a swatch
/// and its label, wrapped in rows above the plots instead of over their
/// data; `styles` explains the line styles (`solid: train · dashed: test`).
pub fn run_legend_ui(ui: &mut egui::Ui, entries: &[(Color32, String)], styles: &str) {
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing.x = 6.0;
        for (color, label) in entries {
            legend_entry(ui, *color, label);
            ui.add_space(6.0);
        }
        ui.weak(styles);
    });
}

/// A plot's right-click menu: export its data as CSV or its picture as PNG
/// (a crop of the screen).
pub fn export_menu(response: &egui::Response, name: &str, csv: impl FnOnce() -> String, commands: &mut Vec<AppCommand>) {
    let rect = response.rect;
    export_menu_with(response, name, csv, || AppCommand::ExportPng { name: name.to_string(), rect }, commands);
}

/// The export menu of a line plot: its PNG is the plot drawn again as a
/// figure, with title, numbered axes and legend.
pub fn export_figure_menu(
    response: &egui::Response,
    name: &str,
    csv: impl FnOnce() -> String,
    figure: impl FnOnce() -> Figure,
    commands: &mut Vec<AppCommand>,
) {
    export_menu_with(response, name, csv, || AppCommand::ExportFigure { name: name.to_string(), figure: Box::new(figure()) }, commands);
}

fn export_menu_with(
    response: &egui::Response,
    name: &str,
    csv: impl FnOnce() -> String,
    png: impl FnOnce() -> AppCommand,
    commands: &mut Vec<AppCommand>,
) {
    let (mut csv, mut png) = (Some(csv), Some(png));
    response.context_menu(|ui| {
        if ui.button("Export CSV").clicked() {
            if let Some(make) = csv.take() {
                commands.push(AppCommand::ExportCsv { name: name.to_string(), csv: make() });
            }
            ui.close();
        }
        if ui.button("Export PNG").clicked() {
            if let Some(make) = png.take() {
                commands.push(make());
            }
            ui.close();
        }
    });
}

/// A small heading with an export hint.
pub fn plot_title(ui: &mut egui::Ui, title: &str, hint: &str) {
    ui.horizontal(|ui| {
        ui.strong(title);
        ui.weak("(right-click to export)").on_hover_text(hint);
    });
}

/// A lighter or darker shade of a run colour for a second series.
pub fn second_shade(color: Color32) -> Color32 {
    color.gamma_multiply(0.55)
}
