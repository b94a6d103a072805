//! The depth sweep: choose families, depths, seeds and a budget, run them one
//! after another, and watch the degradation figure of He et al. fill in —
//! final training and test error against depth per family — next to the
//! first layer's gradient against depth and a table of every run.

use egui::{Color32, DragValue};
use egui_plot::{Line, LineStyle, Plot, PlotPoints, Points};

use super::DepthLabApp;
use super::command::AppCommand;
use super::plots::{self, export_menu, log_plot, log10};
use super::state::SweepSettings;
use crate::arch::presets::Family;
use crate::experiment::{SWEEP_HEADER, SweepRow};
use crate::report::figure::error_bars;
use crate::report::sweep::{seed_points, seeds_caption};
use crate::train::RunStatus;

fn family_color(family: &str) -> Color32 {
    match family {
        "plain" | "plain-mlp" => Color32::from_rgb(239, 83, 80),
        "resnet" | "preact-resnet" => Color32::from_rgb(66, 165, 245),
        "resnet-sd" => Color32::from_rgb(38, 198, 218),
        "highway" | "highway-mlp" => Color32::from_rgb(102, 187, 106),
        "fractal" => Color32::from_rgb(255, 167, 38),
        _ => Color32::from_rgb(171, 71, 188),
    }
}

pub fn sweep_tab_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let mut shown = app.settings_shown();
    egui::Panel::left("sweep-settings").resizable(true).default_size(300.0).show_collapsible(ui, &mut shown, |ui| {
        egui::ScrollArea::vertical().id_salt("sweep-settings-scroll").show(ui, |ui| settings_ui(ui, app, commands));
    });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("sweep-results-scroll").show(ui, |ui| results_ui(ui, app, commands));
    });
}

fn settings_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    ui.heading("Depth sweep");
    ui.label("Train each family at each depth with the same seed and batches, then compare. He et al. (2016) found plain nets' training error rising with depth while residual nets' fell.");
    let running = app.sweep.is_running();
    let s = &mut app.state.sweep;
    ui.add_enabled_ui(!running, |ui| {
        families_ui(ui, s);
        egui::Grid::new("sweep-grid").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| sweep_grid_ui(ui, s));
        if let Some(preview) = planned_nets(&s.families, &s.depths) {
            ui.label(preview);
        }
        if let Some(note) = twin_note(&s.families, &s.overrides) {
            ui.colored_label(ui.visuals().warn_fg_color, note);
        }
        taken_from_train_ui(ui, &app.state.train, app.lr_field);
    });
    run_buttons_ui(ui, app, running, commands);
    progress_ui(ui, app, running);
    follow_ui(ui, app, commands);
    if let Some(e) = &app.sweep.error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    if let Some(dir) = &app.sweep.out_dir {
        ui.weak(format!("writing {}", dir.display()));
    }
}

/// A checkbox per family of nets.
fn families_ui(ui: &mut egui::Ui, s: &mut SweepSettings) {
    ui.strong("Families");
    for family in Family::ALL {
        let mut on = s.families.contains(&family);
        if ui.checkbox(&mut on, family.prefix()).on_hover_text(family.summary()).changed() {
            if on {
                s.families.push(family);
            } else {
                s.families.retain(|f| *f != family);
            }
        }
    }
}

/// Depths, seeds, the budget of each run, how many run at once, and the
/// folder the sweep is written under.
fn sweep_grid_ui(ui: &mut egui::Ui, s: &mut SweepSettings) {
    ui.label("depths");
    ui.add(egui::TextEdit::singleline(&mut s.depths).desired_width(120.0))
        .on_hover_text("Comma-separated; each family uses its valid depth nearest to each");
    ui.end_row();
    ui.label("seeds");
    // A list, not a typed number: a Tab from the depths field once
    // carried its text into a number field here.
    egui::ComboBox::from_id_salt("sweep-seeds")
        .selected_text(s.seeds.to_string())
        .width(60.0)
        .show_ui(ui, |ui| {
            for n in 1..=10 {
                ui.selectable_value(&mut s.seeds, n, n.to_string());
            }
        })
        .response
        .on_hover_text("Runs per (family, depth), with seeds seed, seed+1, …");
    ui.end_row();
    ui.label("budget");
    ui.horizontal(|ui| {
        let mut by_steps = s.max_steps.is_some();
        ui.radio_value(&mut by_steps, false, "epochs");
        ui.radio_value(&mut by_steps, true, "steps");
        match (by_steps, &mut s.max_steps) {
            (true, Some(n)) => {
                ui.add(DragValue::new(n).range(1..=1_000_000)).on_hover_text("Steps per run");
            }
            (true, None) => s.max_steps = Some(150),
            (false, _) => {
                s.max_steps = None;
                ui.add(DragValue::new(&mut s.epochs).range(1..=1000)).on_hover_text("Epochs per run");
            }
        }
    });
    ui.end_row();
    ui.label("at once");
    ui.horizontal(|ui| {
        let mut auto = s.jobs == 0;
        if ui
            .checkbox(&mut auto, "auto")
            .on_hover_text("Two runs at once on a CPU with two or more cores (measured faster than one run on all of them), one on a GPU")
            .changed()
        {
            s.jobs = if auto { 0 } else { 2 };
        }
        if !auto {
            ui.add(DragValue::new(&mut s.jobs).range(1..=crate::util::threads::available().max(1)))
                .on_hover_text("Runs trained at the same time, each on its share of the cores; results do not change");
        }
    });
    ui.end_row();
    ui.label("folder");
    ui.add(egui::TextEdit::singleline(&mut s.out_dir).desired_width(120.0)).on_hover_text("Sweeps are written under this folder");
    ui.end_row();
    // The sweep's own: the Train tab's per-layer settings never reach it.
    super::train_settings::layers_row_ui(ui, &mut s.overrides, "sweep");
    super::train_settings::branch_init_row_ui(ui, &mut s.overrides, "sweep");
}

/// What the sweep takes from the Train tab (and what it does not), said
/// where the sweep is set up.
fn taken_from_train_ui(ui: &mut egui::Ui, train: &crate::train::TrainConfig, lr: f64) {
    ui.weak(format!(
        "Data, optimiser and learning rate come from the Train tab ({}, {}, lr {lr}); the budget and the layer settings above are the sweep's own.",
        train.data.label(),
        format!("{:?}", train.optimizer).to_lowercase()
    ));
}

/// Run sweep and Stop sweep.
fn run_buttons_ui(ui: &mut egui::Ui, app: &DepthLabApp, running: bool, commands: &mut Vec<AppCommand>) {
    ui.horizontal(|ui| {
        if ui.add_enabled(!app.is_training(), egui::Button::new("Run sweep")).clicked() {
            commands.push(AppCommand::StartSweep);
        }
        if ui.add_enabled(running, egui::Button::new("Stop sweep")).clicked() {
            commands.push(AppCommand::StopSweep);
        }
    });
}

/// Runs done and the time left, and the step of the run training now.
fn progress_ui(ui: &mut egui::Ui, app: &DepthLabApp, running: bool) {
    if let Some((index, total, label)) = &app.sweep.progress {
        let done = app.sweep.finished_runs;
        let eta = match app.sweep.started {
            Some(t) if done > 0 && running => {
                let per_run = t.elapsed().as_secs_f64() / done as f64;
                format!(", about {:.0} s left", per_run * (total - done) as f64)
            }
            _ => String::new(),
        };
        let text = if running { format!("run {}/{total}: {label}{eta}", index + 1) } else { format!("{done}/{total} runs done") };
        ui.add(egui::ProgressBar::new(done as f32 / (*total).max(1) as f32).text(text));
        if let Some(run) = app.active_run() {
            let steps = run.steps.last().map_or(0, |s| s.step + 1);
            ui.weak(format!("{}: step {steps}/{}", run.name, run.total_steps()));
        }
    }
}

/// The nets a sweep will train, shown before it runs: each family rounds a
/// depth to its nearest valid one (`plain: 7 → plain-8`), and depths that
/// give the same net run once.
pub fn planned_nets(families: &[Family], depths: &str) -> Option<String> {
    let depths: Vec<usize> = depths.split(',').filter_map(|d| d.trim().parse().ok()).collect();
    if depths.is_empty() || families.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    for family in families {
        let mut names: Vec<String> = Vec::new();
        let mut notes = Vec::new();
        for &depth in &depths {
            let name = family.name(family.size_for_depth(depth));
            if !name.ends_with(&format!("-{depth}")) && !name.contains(&format!("-{depth}-")) {
                notes.push(format!("{depth} → {name}"));
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
        lines.push(format!("{}{notes}", names.join(", ")));
    }
    Some(format!("will train: {}", lines.join("; ")))
}

/// What differs between the sweep's families besides their shortcuts, in
/// words (`None` when they differ by the shortcuts alone): batch norm on
/// one side only makes a comparison that changes two things.
pub fn twin_note(families: &[Family], overrides: &crate::arch::LayerOverrides) -> Option<String> {
    if overrides.norm.is_some() || families.len() < 2 {
        return None;
    }
    let (with, without): (Vec<Family>, Vec<Family>) = families.iter().partition(|f| {
        let size = f.size_for_depth(20);
        f.build(size, crate::data::DataSpec::Digits.expected_shape())
            .is_ok_and(|a| a.blocks.iter().any(|b| b.kind.has_layers() && b.layer.norm == crate::arch::Norm::Batchnorm))
    });
    if with.is_empty() || without.is_empty() {
        return None;
    }
    let names = |fs: &[Family]| fs.iter().map(|f| f.prefix()).collect::<Vec<_>>().join(", ");
    Some(format!(
        "Not one change only: {} use batch norm, {} do not. Tick \"no BN\" above to compare without it on every net.",
        names(&with),
        names(&without)
    ))
}

/// Following a sweep folder that other processes or machines fill
/// (`depthlab sweep --plan`, then jobs.txt or a Slurm job array).
fn follow_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    ui.separator();
    ui.strong("Follow a sweep folder");
    match &app.sweep.followed {
        Some(f) => {
            ui.label(format!(
                "{}: {} of {} runs finished; read again every {} s",
                f.dir.display(),
                app.sweep.finished_runs,
                f.total,
                super::FOLLOW_EVERY.as_secs()
            ));
            if ui.button("Stop following").clicked() {
                commands.push(AppCommand::FollowSweep(None));
            }
        }
        None => {
            ui.weak("A sweep planned with `depthlab sweep --plan` and run elsewhere (jobs.txt, Slurm) fills in here as its runs finish.");
            ui.horizontal(|ui| {
                let label = ui.label("folder to follow");
                let field = ui
                    .add(egui::TextEdit::singleline(&mut app.follow_field).hint_text("a sweep folder").desired_width(150.0))
                    .labelled_by(label.id);
                let go = ui.add_enabled(!app.follow_field.trim().is_empty() && !app.sweep.is_running(), egui::Button::new("Follow"));
                if go.clicked() || (field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))) {
                    commands.push(AppCommand::FollowSweep(Some(std::path::PathBuf::from(app.follow_field.trim()))));
                }
            });
        }
    }
}

fn by_family(rows: &[SweepRow]) -> Vec<(String, Vec<&SweepRow>)> {
    let mut families: Vec<(String, Vec<&SweepRow>)> = Vec::new();
    for row in rows {
        match families.iter_mut().find(|(f, _)| *f == row.family) {
            Some((_, list)) => list.push(row),
            None => families.push((row.family.clone(), vec![row])),
        }
    }
    for (_, list) in &mut families {
        list.sort_by_key(|r| r.depth);
    }
    families
}

/// What a finished sweep shows, in one sentence: how each family's final
/// training error moved from its shallowest net to its deepest.
pub fn sweep_sentence(families: &[(String, Vec<&SweepRow>)]) -> Option<String> {
    let mut parts = Vec::new();
    let mut rose = Vec::new();
    let mut fell = Vec::new();
    for (family, list) in families {
        let errors: Vec<[f64; 2]> = seed_points(list.iter().copied(), |r| r.final_train_error.map(|e| e * 100.0))
            .into_iter()
            .map(|p| [p.depth as f64, p.mean])
            .collect();
        let (Some(first), Some(last)) = (errors.first(), errors.last()) else { continue };
        if errors.len() < 2 {
            continue;
        }
        let verb = if last[1] > first[1] + 0.5 {
            rose.push(family.as_str());
            "rose"
        } else if last[1] < first[1] - 0.5 {
            fell.push(family.as_str());
            "fell"
        } else {
            "stayed"
        };
        parts.push(format!(
            "{family}'s training error {verb} from {:.1}% at depth {} to {:.1}% at depth {}",
            first[1], first[0], last[1], last[0]
        ));
    }
    if parts.is_empty() {
        return None;
    }
    let mut sentence = format!("{}.", parts.join("; "));
    let residual = |f: &str| f.contains("resnet") || f.contains("highway") || f.contains("dense") || f.contains("fractal");
    if rose.iter().any(|f| !residual(f)) && !rose.iter().any(|f| residual(f)) && fell.iter().any(|f| residual(f)) {
        sentence
            .push_str(" Deeper plain nets train worse while nets with shortcuts train better: the degradation He et al. (2016) describe.");
    } else if rose.iter().any(|f| !residual(f)) && !rose.iter().any(|f| residual(f)) {
        sentence.push_str(" Only the plain nets got worse with depth, as He et al. (2016) found.");
    } else if rose.is_empty() {
        sentence.push_str(" No family got worse with depth at this budget; a longer budget or deeper nets show the degradation.");
    }
    Some(sentence)
}

fn sweep_csv(rows: &[SweepRow]) -> String {
    let mut csv = format!("{SWEEP_HEADER}\n");
    for r in rows {
        csv.push_str(&r.csv());
        csv.push('\n');
    }
    csv
}

/// The live decision boundaries of the sweep's runs on 2-D data, side by
/// side (plain beside residual, every depth), above the sweep's figure.
fn boundaries_ui(ui: &mut egui::Ui, app: &DepthLabApp) {
    let runs: Vec<&crate::app::runs::RunView> = app.sweep.views.iter().filter_map(|v| app.runs.get(v.1)).collect();
    if super::plots::boundary::any(&runs) {
        ui.strong("Decision boundaries")
            .on_hover_text("The class each net predicts over the plane, with the training points, redrawn as it trains");
        super::plots::boundary::boundaries_ui(ui, &runs);
        ui.separator();
    }
}

fn results_ui(ui: &mut egui::Ui, app: &DepthLabApp, commands: &mut Vec<AppCommand>) {
    boundaries_ui(ui, app);
    let rows = &app.sweep.rows;
    if rows.is_empty() {
        ui.add_space(30.0);
        ui.vertical_centered(|ui| {
            ui.heading("The degradation figure fills in here as the sweep's runs finish.");
            ui.label("Defaults compare plain and residual nets at depths 8, 20, 32 and 44 on the embedded data.");
        });
        return;
    }
    let families = by_family(rows);
    if let Some(sentence) = sweep_sentence(&families) {
        ui.label(egui::RichText::new(sentence).strong());
        ui.add_space(4.0);
    }
    notes_ui(ui, rows, &families);
    // Depth runs from 0 to a little past the deepest net: one point or many,
    // the axis never shows negative depths.
    let deepest = rows.iter().map(|r| r.depth).max().unwrap_or(1) as f64;
    error_plot_ui(ui, rows, &families, deepest, commands);
    ui.separator();
    gradient_plot_ui(ui, rows, &families, deepest, commands);
    ui.separator();
    runs_table_ui(ui, rows);
}

/// The family legend, the runs left out of the plots, and how many seeds
/// each point averages.
fn notes_ui(ui: &mut egui::Ui, rows: &[SweepRow], families: &[(String, Vec<&SweepRow>)]) {
    // The family legend sits above the plots, not over their points.
    ui.horizontal_wrapped(|ui| {
        for (family, _) in families {
            plots::legend_entry(ui, family_color(family), family);
        }
    });
    // Diverged and failed runs have no final error to plot: say which.
    let left_out: Vec<String> = rows
        .iter()
        .filter(|r| !matches!(r.status, RunStatus::Completed | RunStatus::Stopped))
        .map(|r| format!("{}-{} seed {} ({})", r.family, r.depth, r.seed, r.status))
        .collect();
    if !left_out.is_empty() {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Not plotted: {}.", left_out.join(", ")));
    }
    let counts: Vec<usize> =
        families.iter().flat_map(|(_, list)| seed_points(list.iter().copied(), |r| r.final_train_error)).map(|p| p.n).collect();
    if counts.iter().any(|&n| n > 1) {
        ui.weak(format!("Finished runs only: {}", seeds_caption(&counts)));
    }
}

/// Final training and test error against depth, per family: the
/// degradation figure of He et al.
fn error_plot_ui(
    ui: &mut egui::Ui,
    rows: &[SweepRow],
    families: &[(String, Vec<&SweepRow>)],
    deepest: f64,
    commands: &mut Vec<AppCommand>,
) {
    plots::plot_title(
        ui,
        "Final error vs depth (solid: training error, dashed: test error)",
        "The degradation problem: plain nets' training error grows with depth",
    );
    let response = Plot::new("sweep-error")
        .height(280.0)
        .include_x(0.0)
        .include_x(deepest * 1.1)
        .allow_scroll(false)
        .x_axis_label("depth (weight layers)")
        .y_axis_label("error %")
        .include_y(0.0)
        .show(ui, |plot| {
            for (family, list) in families {
                let color = family_color(family);
                let train = seed_points(list.iter().copied(), |r| r.final_train_error.map(|e| e * 100.0));
                let test = seed_points(list.iter().copied(), |r| r.final_test_error.map(|e| e * 100.0));
                for (name, points, dashed) in [(format!("{family} train"), train, false), (format!("{family} test"), test, true)] {
                    let xy: Vec<[f64; 2]> = points.iter().map(|p| [p.depth as f64, p.mean]).collect();
                    let line = Line::new(name.clone(), PlotPoints::new(xy.clone())).color(color);
                    plot.line(if dashed { line.style(LineStyle::dashed_loose()).width(1.5) } else { line.width(2.5) });
                    let spread: Vec<f64> = points.iter().map(|p| p.std).collect();
                    error_bars(plot, &name, &xy, &spread, color, false);
                    plot.points(Points::new(name, PlotPoints::new(xy)).color(color).radius(if dashed { 3.0 } else { 4.0 }));
                }
            }
        })
        .response;
    export_menu(&response, "sweep-error", || sweep_csv(rows), commands);
}

/// The first layer's gradient against depth, per family (log scale).
fn gradient_plot_ui(
    ui: &mut egui::Ui,
    rows: &[SweepRow],
    families: &[(String, Vec<&SweepRow>)],
    deepest: f64,
    commands: &mut Vec<AppCommand>,
) {
    plots::plot_title(
        ui,
        "First layer's output-gradient norm vs depth (last probe, log)",
        "How much learning signal reaches the first block",
    );
    let response = log_plot("sweep-gradient", "depth", "first-layer gradient")
        .height(220.0)
        .include_x(0.0)
        .include_x(deepest * 1.1)
        .allow_scroll(false)
        .show(ui, |plot| {
            for (family, list) in families {
                let color = family_color(family);
                let points = seed_points(list.iter().copied(), |r| r.first_layer_output_grad_norm);
                let xy: Vec<[f64; 2]> = points.iter().map(|p| [p.depth as f64, p.mean]).collect();
                let logged: Vec<[f64; 2]> = xy.iter().map(|&[d, v]| [d, log10(v)]).collect();
                plot.line(Line::new(family.clone(), PlotPoints::new(logged.clone())).color(color).width(2.0));
                error_bars(plot, family, &xy, &points.iter().map(|p| p.std).collect::<Vec<_>>(), color, true);
                plot.points(Points::new(family.clone(), PlotPoints::new(logged)).color(color).radius(4.0));
            }
        })
        .response;
    export_menu(&response, "sweep-gradient", || sweep_csv(rows), commands);
}

/// A row per run of the sweep.
fn runs_table_ui(ui: &mut egui::Ui, rows: &[SweepRow]) {
    ui.strong("Runs");
    egui::Grid::new("sweep-table").striped(true).num_columns(8).spacing([14.0, 4.0]).show(ui, |ui| {
        for h in ["family", "depth", "seed", "params", "train loss", "train error", "test error", "first-layer ∂L/∂out", "status"] {
            ui.strong(h);
        }
        ui.end_row();
        let pct = |v: Option<f32>| v.map_or("-".to_string(), |e| format!("{:.2}%", e * 100.0));
        for r in rows {
            ui.colored_label(family_color(&r.family), &r.family);
            ui.label(r.depth.to_string());
            ui.label(r.seed.to_string());
            ui.label(crate::util::format_params(r.params));
            ui.label(r.final_train_loss.map_or("-".into(), |l| format!("{l:.4}")));
            ui.label(pct(r.final_train_error));
            ui.label(pct(r.final_test_error));
            ui.label(r.first_layer_output_grad_norm.map_or("-".into(), |g| format!("{g:.3e}")));
            ui.label(r.status.to_string());
            ui.end_row();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_says_when_its_families_differ_by_more_than_shortcuts() {
        let none = crate::arch::LayerOverrides::default();
        assert_eq!(twin_note(&[Family::Plain, Family::Resnet], &none), None, "both have batch norm");
        assert_eq!(twin_note(&[Family::PlainMlp, Family::HighwayMlp], &none), None, "neither has");
        let note = twin_note(&[Family::PlainMlp, Family::ResnetMlp], &none).expect("a note");
        assert!(note.contains("resnet-mlp use batch norm, plain-mlp do not"), "{note}");
        let no_bn = crate::arch::LayerOverrides { norm: Some(crate::arch::Norm::None), ..none };
        assert_eq!(twin_note(&[Family::PlainMlp, Family::ResnetMlp], &no_bn), None, "BN off on every net");
    }
}
