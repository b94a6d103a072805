//! The menu bar with the tabs, the status bar, and the keyboard-shortcut overlay.

use super::DepthLabApp;
use super::command::AppCommand;
use super::state::Tab;
use super::tasks::Pick;
use crate::arch::presets::Family;

pub fn menu_bar_ui(ui: &mut egui::Ui, app: &mut DepthLabApp) {
    egui::Panel::top("menu-bar").show(ui, |ui| {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                lab_menu_ui(ui, app);
                ui.separator();
                if ui.button("New network").clicked() {
                    app.push(AppCommand::NewArchitecture);
                    ui.close();
                }
                if app.options.dialogs {
                    if ui.button("Open architecture…").clicked() {
                        app.push(AppCommand::PickFile(Pick::OpenArchitecture));
                        ui.close();
                    }
                    if ui.button("Save architecture as…").clicked() {
                        app.push(AppCommand::PickFile(Pick::SaveArchitecture));
                        ui.close();
                    }
                    if ui.button("Load run folder…").clicked() {
                        app.push(AppCommand::PickFile(Pick::RunFolder));
                        ui.close();
                    }
                }
                if ui.button("Save architecture (Ctrl+S)").clicked() {
                    app.push(AppCommand::SaveArchitecture(app.state.arch_path.clone().into()));
                    ui.close();
                }
                ui.separator();
                let selected = app.runs.selected().filter(|r| r.dir.is_some() && !r.is_running()).map(|r| (r.id, r.label.clone()));
                let text = selected.as_ref().map_or("Export run to PyTorch".to_string(), |(_, l)| format!("Export {l} to PyTorch"));
                if ui
                    .add_enabled(selected.is_some(), egui::Button::new(text))
                    .on_hover_text("The selected run (click it in the Train tab's list) as model.py, weights.safetensors and predict.py")
                    .clicked()
                {
                    if let Some((id, _)) = selected {
                        app.push(AppCommand::ExportRunToPytorch(id));
                    }
                    ui.close();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("Presets", |ui| {
                for family in Family::ALL {
                    ui.menu_button(family.prefix(), |ui| {
                        ui.weak(family.summary());
                        for &size in family.featured_sizes() {
                            let name = family.name(size);
                            if ui.button(&name).clicked() {
                                app.push(AppCommand::LoadPreset(name));
                                ui.close();
                            }
                        }
                        ui.weak(format!("other sizes: {} (use the depth control)", family.size_meaning()));
                    });
                }
            });
            ui.menu_button("View", |ui| view_menu_ui(ui, app));
            ui.separator();
            for tab in Tab::ALL {
                let selected = app.state.tab == tab;
                if ui.selectable_label(selected, tab.title()).clicked() {
                    app.push(AppCommand::SetTab(tab));
                }
            }
        });
    });
}

/// View: theme, shortcuts, presentation mode and its zoom.
fn view_menu_ui(ui: &mut egui::Ui, app: &mut DepthLabApp) {
    let theme = if app.state.dark { "Light theme" } else { "Dark theme" };
    if ui.button(theme).clicked() {
        app.push(AppCommand::ToggleTheme);
        ui.close();
    }
    if ui.button("Keyboard shortcuts (F1)").clicked() {
        app.push(AppCommand::ToggleHelp);
        ui.close();
    }
    ui.separator();
    let present = if app.state.present { "Leave presentation (F11)" } else { "Present (F11)" };
    if ui.button(present).on_hover_text("For a projector: the settings panels step aside and everything is drawn larger").clicked() {
        app.push(AppCommand::SetPresent(!app.state.present));
        ui.close();
    }
    ui.menu_button("Present at", |ui| {
        for zoom in super::present::ZOOMS {
            let chosen = app.state.present && (ui.ctx().zoom_factor() - zoom).abs() < 0.01;
            if ui.selectable_label(chosen, format!("{:.0} %", zoom * 100.0)).clicked() {
                app.push(AppCommand::SetPresentZoom(zoom));
                ui.close();
            }
        }
    });
    ui.weak("Zoom: Ctrl + / Ctrl - / Ctrl 0");
}

/// File → New lab, Open lab…, Save lab, Save lab as…, Recent labs.
fn lab_menu_ui(ui: &mut egui::Ui, app: &mut DepthLabApp) {
    if ui.button("New lab").on_hover_text("Default settings and an empty run list; run folders stay on disk").clicked() {
        app.push(AppCommand::NewLab);
        ui.close();
    }
    if ui.button("Open lab…").clicked() {
        app.push(AppCommand::PickFile(Pick::OpenLab));
        ui.close();
    }
    let own = !app.state.lab_path.is_empty();
    let save =
        if own { format!("Save lab (Ctrl+Shift+S) to {}", short_name(&app.state.lab_path)) } else { "Save lab… (Ctrl+Shift+S)".into() };
    if ui.button(save).on_hover_text("The network, settings, runs, sweep and analyses on screen, as a .depthlab file").clicked() {
        app.push(AppCommand::SaveLab(None));
        ui.close();
    }
    if own && ui.button("Save lab as…").clicked() {
        app.push(AppCommand::PickFile(Pick::SaveLab));
        ui.close();
    }
    ui.add_enabled_ui(!app.state.recent_labs.is_empty(), |ui| {
        ui.menu_button("Recent labs", |ui| {
            for path in app.state.recent_labs.clone() {
                if ui.button(short_name(&path)).on_hover_text(&path).clicked() {
                    app.push(AppCommand::OpenLab(path.into()));
                    ui.close();
                }
            }
        });
    });
}

/// A file's name without its folders.
fn short_name(path: &str) -> String {
    std::path::Path::new(path).file_name().map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

pub fn status_bar_ui(ui: &mut egui::Ui, app: &DepthLabApp) {
    egui::Panel::bottom("status-bar").show(ui, |ui| {
        // The frame time claims its place on the right first; the rest
        // fills what is left and is cut short with "…" in a narrow window.
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if let Some((median, p99)) = app.frame_stats.median_p99().filter(|_| app.options.show_frame_time) {
                ui.weak(format!("frame {median:.1} ms (p99 {p99:.1})"))
                    .on_hover_text("UI time per frame: median and 99th percentile of the last 600 frames");
            }
            ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| status_text_ui(ui, app));
        });
    });
}

fn status_text_ui(ui: &mut egui::Ui, app: &DepthLabApp) {
    let weak = ui.visuals().weak_text_color();
    match &app.compute {
        Some(c) => {
            let label = if c.gpu { format!("GPU: {}", c.adapter) } else { format!("Compute: {}", c.adapter) };
            ui.label(label).on_hover_text(&c.reason);
        }
        None => {
            ui.weak(format!("Compute: {:?} (checking adapters…)", app.state.train.backend).to_lowercase());
        }
    }
    ui.separator();
    if let Some(run) = app.active_run() {
        let step = run.steps.last().map_or(0, |s| s.step + 1);
        let state = if run.paused { "paused" } else { "training" };
        ui.add(egui::Label::new(format!("{state} {}: step {step}/{}", run.label, run.total_steps())).truncate());
        ui.separator();
    }
    let interval = app.render_budget.interval.get();
    if app.is_training() && interval >= std::time::Duration::from_millis(250) {
        let cost = app.render_budget.cost_ms().unwrap_or(0.0);
        ui.weak(format!("plots every {:.1} s", interval.as_secs_f64())).on_hover_text(format!(
            "Drawing a frame costs {cost:.0} ms of CPU here (no GPU: a software renderer), so new training data redraws the \
             window only this often, keeping drawing under {:.0}% of a core and the rest for training. Input still redraws at once.",
            super::render_budget::RENDER_SHARE * 100.0
        ));
        ui.separator();
    }
    if let Some(m) = &app.message {
        let color = if m.error { ui.visuals().error_fg_color } else { ui.visuals().text_color() };
        ui.add(egui::Label::new(egui::RichText::new(&m.text).color(color)).truncate()).on_hover_text(&m.text);
        ui.separator();
    }
    // Why the CPU was chosen, last: the first text to be cut short.
    if let Some(c) = app.compute.as_ref().filter(|c| !c.gpu) {
        ui.add(egui::Label::new(egui::RichText::new(format!("({})", c.reason)).color(weak)).truncate()).on_hover_text(&c.reason);
    }
}

pub fn help_overlay_ui(ctx: &egui::Context, open: &mut bool) {
    if !*open {
        return;
    }
    let shortcuts = [
        ("Ctrl+Z", "undo"),
        ("Ctrl+Shift+Z, Ctrl+Y", "redo"),
        ("Delete", "delete the selected block"),
        ("Ctrl+D", "duplicate the selected block"),
        ("Escape", "deselect / close this overlay"),
        ("Ctrl+S", "save the architecture to the path field"),
        ("Ctrl+Shift+S", "save the lab (.depthlab)"),
        ("Ctrl+O", "load the architecture from the path field"),
        ("Ctrl+Enter", "start / stop training"),
        ("Space", "pause / resume (Train tab)"),
        ("Ctrl+1 … Ctrl+6", "Build, Train, Depth sweep, Classify, Why it works, Lessons"),
        ("F1", "this overlay"),
        ("F11", "presentation mode: panels aside, 200 % (View → Present at)"),
        ("Ctrl + / Ctrl - / Ctrl 0", "zoom in / out / back to 100 %"),
    ];
    egui::Window::new("Keyboard shortcuts").open(open).collapsible(false).resizable(false).show(ctx, |ui| {
        egui::Grid::new("shortcuts").num_columns(2).striped(true).show(ui, |ui| {
            for (keys, what) in shortcuts {
                ui.monospace(keys);
                ui.label(what);
                ui.end_row();
            }
        });
        ui.add_space(6.0);
        ui.weak(
            "Files dropped on the window: *.depthlab opens a lab, *.json an architecture, an image is classified, a run folder is loaded.",
        );
    });
}
