//! The live plots: loss and accuracy, gradient norm per layer, the layer x
//! step heatmap, the first layer's gradient over time, architecture probes
//! and the confusion matrix. egui_plot has no log axis, so log-scaled plots
//! draw log10 values on an axis marked and labelled by decades.

pub mod heatmap;
mod log_axis;
pub mod series;

use egui::Color32;

pub use log_axis::{decade_label, log_plot, log10};

use super::command::AppCommand;

/// A plot's right-click menu: export its data as CSV or its picture as PNG.
pub fn export_menu(response: &egui::Response, name: &str, csv: impl FnOnce() -> String, commands: &mut Vec<AppCommand>) {
    let mut csv = Some(csv);
    response.context_menu(|ui| {
        if ui.button("Export CSV").clicked() {
            if let Some(make) = csv.take() {
                commands.push(AppCommand::ExportCsv { name: name.to_string(), csv: make() });
            }
            ui.close();
        }
        if ui.button("Export PNG").clicked() {
            commands.push(AppCommand::ExportPng { name: name.to_string(), rect: response.rect });
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
