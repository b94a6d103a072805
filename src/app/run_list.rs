//! The run list of the Train tab: the runs trained here and loaded, then
//! each sweep's runs in a group of their own (collapsed, and not in the
//! plots until ticked). Show all / hide all above, "show only this" per run,
//! each run's final test accuracy beside its status.

use super::DepthLabApp;
use super::command::AppCommand;
use super::runs::{RunId, RunView, Visibility};
use super::tasks::Pick;
use crate::train::RunStatus;

const HEADERS: [&str; 9] =
    ["show", "", "name (click: focus, double-click: rename)", "architecture", "status", "test accuracy", "elapsed", "images/s", ""];

pub fn run_list_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    app.runs.refresh_labels();
    let count = app.runs.runs.len();
    let shown = app.runs.runs.iter().filter(|r| r.visible).count();
    // Presenting, the list starts folded so the plots fit a projector's screen.
    let present = app.state.present;
    let header = egui::CollapsingHeader::new(format!("Runs ({count}, {shown} shown)"));
    header.id_salt(("runs-header", present)).default_open(!present).show(ui, |ui| {
        ui.horizontal(|ui| {
            if app.options.dialogs && ui.button("Load run folder…").clicked() {
                commands.push(AppCommand::PickFile(Pick::RunFolder));
            }
            if count > 0 {
                if ui.add_enabled(shown < count, egui::Button::new("Show all")).on_hover_text("Every run in the plots").clicked() {
                    commands.push(AppCommand::ShowRuns(Visibility::All));
                }
                if ui.add_enabled(shown > 0, egui::Button::new("Hide all")).on_hover_text("No run in the plots").clicked() {
                    commands.push(AppCommand::ShowRuns(Visibility::None));
                }
            }
        });
        if count == 0 {
            ui.weak("Runs you train (and those in the runs folder) appear here.");
            return;
        }
        let ungrouped: Vec<RunId> = app.runs.runs.iter().rev().filter(|r| r.group.is_none()).map(|r| r.id).collect();
        if !ungrouped.is_empty() {
            runs_grid(ui, app, "run-list", &ungrouped, commands);
        }
        for group in app.runs.groups() {
            let ids: Vec<RunId> = app.runs.runs.iter().filter(|r| r.group.as_ref() == Some(&group)).map(|r| r.id).collect();
            let on = ids.iter().filter(|id| app.runs.get(**id).is_some_and(|r| r.visible)).count();
            ui.horizontal(|ui| {
                let mut all = on == ids.len();
                if ui.checkbox(&mut all, "").on_hover_text(format!("Show every run of {group} in the plots")).changed() {
                    commands.push(AppCommand::ShowRuns(Visibility::Group(group.clone(), all)));
                }
                egui::CollapsingHeader::new(format!("{group} ({} runs, {on} shown)", ids.len()))
                    .id_salt(("run-group", &group))
                    .default_open(false)
                    .show(ui, |ui| runs_grid(ui, app, &format!("run-list-{group}"), &ids, commands));
            });
        }
    });
}

fn runs_grid(ui: &mut egui::Ui, app: &mut DepthLabApp, id: &str, ids: &[RunId], commands: &mut Vec<AppCommand>) {
    let selected = app.runs.selected().map(|r| r.id);
    let (runs, renaming) = (&app.runs, &mut app.renaming);
    // A narrow window scrolls the table sideways instead of widening the
    // page (which pushed the plots past its right edge).
    egui::ScrollArea::horizontal()
        .id_salt(("run-list-scroll", id))
        .show(ui, |ui| runs_table(ui, runs, renaming, id, ids, selected, commands));
}

fn runs_table(
    ui: &mut egui::Ui,
    runs: &super::runs::RunStore,
    renaming: &mut Option<(RunId, String)>,
    id: &str,
    ids: &[RunId],
    selected: Option<RunId>,
    commands: &mut Vec<AppCommand>,
) {
    egui::Grid::new(id).num_columns(HEADERS.len()).striped(true).spacing([10.0, 4.0]).show(ui, |ui| {
        for h in HEADERS {
            ui.weak(h);
        }
        ui.end_row();
        for id in ids {
            let Some(run) = runs.get(*id) else { continue };
            run_row(ui, run, renaming, selected == Some(run.id), commands);
            ui.end_row();
        }
    });
}

fn run_row(ui: &mut egui::Ui, run: &RunView, renaming: &mut Option<(RunId, String)>, selected: bool, commands: &mut Vec<AppCommand>) {
    let mut visible = run.visible;
    if ui.checkbox(&mut visible, "").on_hover_text(format!("Show {} in the plots", run.label)).changed() {
        commands.push(AppCommand::SetRunVisible(run.id, visible));
    }
    let (swatch, _) = ui.allocate_exact_size(egui::Vec2::new(12.0, 12.0), egui::Sense::hover());
    ui.painter().rect_filled(swatch, 2.0, run.color);
    if let Some((_, text)) = renaming.as_mut().filter(|(id, _)| *id == run.id) {
        let edit = ui.add(egui::TextEdit::singleline(text).desired_width(140.0)).on_hover_text("New name (Enter)");
        if edit.lost_focus() {
            commands.push(AppCommand::RenameRun(run.id, text.clone()));
            *renaming = None;
        } else {
            edit.request_focus();
        }
    } else {
        let label =
            ui.selectable_label(selected, &run.label).on_hover_text(run.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default());
        if label.clicked() {
            commands.push(AppCommand::SelectRun(run.id));
        }
        if label.double_clicked() {
            *renaming = Some((run.id, run.name.clone()));
        }
    }
    ui.label(&run.arch.name);
    let status = if run.paused { "paused".to_string() } else { run.status.to_string() };
    let color = match run.status {
        RunStatus::Failed | RunStatus::Diverged => ui.visuals().error_fg_color,
        RunStatus::Running => ui.visuals().warn_fg_color,
        _ => ui.visuals().text_color(),
    };
    let reason = run.summary.as_ref().and_then(|s| s.reason.clone()).unwrap_or_default();
    ui.colored_label(color, status).on_hover_text(reason);
    ui.label(run.final_accuracy().map_or("-".into(), |a| format!("{:.1}%", a * 100.0)))
        .on_hover_text("Test accuracy at the last evaluation");
    ui.label(format!("{:.0} s", run.elapsed_secs()));
    ui.label(run.images_per_sec().filter(|v| *v > 0.0).map_or("-".into(), |v| format!("{v:.0}")));
    ui.menu_button("…", |ui| {
        if ui.button("Show only this").on_hover_text("Hide every other run in the plots").clicked() {
            commands.push(AppCommand::ShowRuns(Visibility::Only(run.id)));
            ui.close();
        }
        if ui.button("Rename").clicked() {
            *renaming = Some((run.id, run.name.clone()));
            ui.close();
        }
        if ui.button("Open its architecture in the builder").clicked() {
            commands.push(AppCommand::EditRunArchitecture(run.id));
            ui.close();
        }
        let exportable = !run.is_running() && run.dir.is_some();
        if ui
            .add_enabled(exportable, egui::Button::new("Export to PyTorch"))
            .on_hover_text("model.py, weights.safetensors and predict.py under the runs folder's exports/ (as `depthlab export`)")
            .clicked()
        {
            commands.push(AppCommand::ExportRunToPytorch(run.id));
            ui.close();
        }
        if ui.add_enabled(!run.is_running(), egui::Button::new("Continue training from its weights")).clicked() {
            commands.push(AppCommand::ContinueRun(run.id));
            ui.close();
        }
        if ui.add_enabled(!run.is_running(), egui::Button::new("Delete…")).clicked() {
            commands.push(AppCommand::AskDeleteRun(run.id));
            ui.close();
        }
    })
    .response
    .on_hover_text("Run actions");
}
