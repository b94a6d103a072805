//! The Train tab: Start / Pause / Stop, the learning rate while running,
//! the run list, and the live plots (the data and hyperparameters beside
//! them are in `train_settings`).

use egui::{DragValue, RichText};

use super::DepthLabApp;
use super::command::AppCommand;
use super::plots::{self, heatmap, series};
use super::runs::RunView;
use crate::arch::{Activation, Norm};

pub fn train_tab_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let mut shown = app.settings_shown();
    egui::Panel::left("train-settings").resizable(true).default_size(330.0).show_collapsible(ui, &mut shown, |ui| {
        egui::ScrollArea::vertical().id_salt("train-settings-scroll").show(ui, |ui| {
            controls_ui(ui, app, commands);
            ui.separator();
            super::train_settings::settings_ui(ui, app, commands);
        });
    });
    egui::CentralPanel::default().show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("plots-scroll").show(ui, |ui| {
            super::run_list::run_list_ui(ui, app, commands);
            ui.separator();
            plots_ui(ui, app, commands);
            // A reset asked for applies to one frame of every plot.
            app.plot_view.reset = false;
        });
    });
}

impl DepthLabApp {
    /// The run training now (alone or in a sweep).
    pub fn active_run(&self) -> Option<&RunView> {
        self.active.as_ref().map(|a| a.run).or(self.sweep.current).and_then(|id| self.runs.get(id))
    }
}

fn controls_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    ui.heading("Train");
    let analysis = &app.builder.analysis;
    ui.label(format!("{}: depth {}, {} parameters", app.builder.arch.name, analysis.depth, crate::util::format_params(analysis.params)));
    if !analysis.is_valid() {
        ui.colored_label(ui.visuals().error_fg_color, "The network in the builder is invalid: fix it in the Build tab.");
    }
    let active = app.active_run().cloned();
    let training = app.is_training();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!training && analysis.is_valid(), egui::Button::new(RichText::new("Start").strong()))
            .on_hover_text("Train the network in the builder (Ctrl+Enter)")
            .clicked()
        {
            commands.push(AppCommand::StartTraining);
        }
        let paused = active.as_ref().is_some_and(|r| r.paused);
        if paused {
            if ui.add_enabled(training, egui::Button::new("Resume")).on_hover_text("Space").clicked() {
                commands.push(AppCommand::ResumeTraining);
            }
        } else if ui.add_enabled(training, egui::Button::new("Pause")).on_hover_text("Space").clicked() {
            commands.push(AppCommand::PauseTraining);
        }
        let stopping = app.is_stopping();
        if ui
            .add_enabled(training && !stopping, egui::Button::new("Stop"))
            .on_hover_text("Stop after this step; the run keeps its weights and logs")
            .clicked()
        {
            commands.push(AppCommand::StopTraining);
        }
        if stopping {
            ui.spinner();
            // On a slow adapter "the step" can take minutes: say so.
            let mean_step = active.as_ref().and_then(|r| r.steps.last()).map(|m| m.elapsed_secs / (m.step + 1) as f64);
            let wait = crate::train::events::step_wait(mean_step);
            ui.label(format!("stopping: finishing the step{wait}, evaluating and saving the weights…"));
        }
    });
    ui.horizontal(|ui| {
        ui.label("learning rate");
        ui.add(DragValue::new(&mut app.lr_field).speed(0.001).range(1e-6..=10.0).max_decimals(5))
            .on_hover_text("Base learning rate; while a run trains, Set changes it at once");
        if ui.add_enabled(training, egui::Button::new("Set")).on_hover_text("Apply this learning rate to the running training").clicked() {
            commands.push(AppCommand::SetLearningRate(app.lr_field));
        }
    });
    if let Some(run) = &active {
        let total = run.total_steps().max(1);
        let done = run.steps.last().map_or(0, |s| s.step + 1);
        let eta = match run.steps.last() {
            Some(s) if done > 0 => {
                let secs = s.elapsed_secs / done as f64 * (total.saturating_sub(done)) as f64;
                format!(", ETA {:.0} s", secs)
            }
            _ => String::new(),
        };
        let text = match &run.preparing {
            Some(what) => format!("{what}…"),
            None => format!("step {done}/{total}{eta}, {:.0} img/s", run.images_per_sec().unwrap_or(0.0)),
        };
        ui.add(egui::ProgressBar::new(done as f32 / total as f32).text(text));
        if let Some(started) = &run.started {
            let color = if started.fell_back { ui.visuals().warn_fg_color } else { ui.visuals().weak_text_color() };
            ui.colored_label(color, format!("{} on {}", started.backend, started.adapter)).on_hover_text(&started.backend_reason);
            if started.fell_back {
                ui.colored_label(ui.visuals().warn_fg_color, format!("CPU fallback: {}", started.backend_reason));
            }
        }
    }
}

/// The first layer's output gradient over the last hidden layer's (the
/// layer before the classifier, whose gradient is the loss's own slope
/// and says nothing of depth); with two layers or fewer, over the last.
fn first_to_last_hidden(output: &[f32]) -> Option<f32> {
    let first = *output.first()?;
    let last = if output.len() >= 3 { output[output.len() - 2] } else { *output.last()? };
    Some(first / last.max(f32::MIN_POSITIVE))
}

/// Whether a net has identity (or projection) shortcuts.
fn has_shortcuts(arch: &crate::arch::Architecture) -> bool {
    use crate::arch::{BlockKind, Shortcut};
    arch.blocks.iter().any(|b| match &b.kind {
        BlockKind::Residual { shortcut, .. } | BlockKind::ResidualDense { shortcut, .. } => *shortcut != Shortcut::None,
        _ => false,
    })
}

/// What the gradient plots show, in words, from the data itself.
fn explanation(run: &RunView) -> String {
    let Some(g) = run.gradients.last() else {
        return "Gradient probes arrive every few steps. The gradient of the loss with respect to each layer's output \
                shows whether the learning signal reaches the first layers."
            .into();
    };
    let Some(ratio) = first_to_last_hidden(&g.output) else { return String::new() };
    let saturating =
        run.arch.blocks.iter().any(|b| b.kind.has_layers() && matches!(b.layer.activation, Activation::Sigmoid | Activation::Tanh))
            || run.config.overrides.activation.is_some_and(|a| matches!(a, Activation::Sigmoid | Activation::Tanh));
    let bn = run.arch.blocks.iter().any(|b| b.kind.has_layers() && b.layer.norm == Norm::Batchnorm)
        && run.config.overrides.norm != Some(Norm::None);
    let mut text = format!(
        "{}: at step {} the first layer receives {:.2e} times the output gradient of the last hidden layer.",
        run.name, g.step, ratio
    );
    if ratio < 1e-2 {
        text.push_str(
            " That is a vanishing gradient: each layer multiplies the backward signal by a factor below 1 \
             (a sigmoid's slope is at most 1/4), so the first layers barely learn.",
        );
        if saturating {
            text.push_str(" Glorot & Bengio (2010) saw exactly this with sigmoid and tanh networks.");
        }
    } else if ratio > 1e2 {
        text.push_str(
            " That is an exploding gradient: the backward signal grows on its way to the first layers, \
             so they take much larger steps than the last ones (a sum of identity shortcuts does this when every \
             branch adds its variance to the stream; a branch init that starts each branch at zero keeps it flat).",
        );
    } else if has_shortcuts(&run.arch) {
        text.push_str(
            " Its identity shortcuts carry the gradient down unchanged: each block's derivative is 1 + F'(x), \
             whatever its branch does (He et al. 2016).",
        );
        if bn {
            text.push_str(
                " Batch norm is on as well: a plain twin with the same batch norm (the Presets' plain-N) shows \
                 what the shortcuts alone change.",
            );
        }
    } else if bn {
        text.push_str(
            " With batch normalisation the gradient reaches the first layers at a healthy size, in plain nets too. \
             He et al. (2016) found the same: a deep plain net's higher training error is an optimisation difficulty, \
             not a vanishing gradient. Compare training error in the depth sweep.",
        );
    } else {
        text.push_str(" The learning signal reaches the first layers.");
    }
    text
}

/// The lines of the loss and accuracy plots: each run, or (when ticked,
/// and there are any) runs that differ only by seed as one; the tick box
/// and the legend above the plots. Returns the groups (indices into
/// `visible`).
fn lines_ui(ui: &mut egui::Ui, group_seeds: &mut bool, visible: &[&RunView]) -> Vec<Vec<usize>> {
    let seed_groups = super::run_labels::seed_groups(visible);
    let seed_twins = seed_groups.iter().any(|g| g.len() > 1);
    if seed_twins {
        ui.checkbox(group_seeds, "Runs that differ only by seed as one line (mean ± one standard deviation)").on_hover_text(
            "Loss and accuracy: the seeds' mean, the band and bars one standard deviation; the gradient plots keep every run",
        );
    }
    let groups: Vec<Vec<usize>> = if seed_twins && *group_seeds { seed_groups } else { (0..visible.len()).map(|i| vec![i]).collect() };
    let legend: Vec<(egui::Color32, String)> =
        groups.iter().map(|g| (visible[g[0]].color, super::run_labels::seed_group_label(visible[g[0]], g.len()))).collect();
    plots::run_legend_ui(ui, &legend, "solid: train · dashed: test · ×: diverged");
    groups
}

fn plots_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let visible: Vec<&RunView> = app.runs.visible().collect();
    if visible.is_empty() && !app.runs.runs.is_empty() {
        ui.add_space(20.0);
        ui.vertical_centered(|ui| {
            ui.heading("No run is shown.");
            ui.label("Tick runs in the list above, or press Show all.");
        });
        return;
    }
    if visible.is_empty() {
        ui.add_space(20.0);
        ui.vertical_centered(|ui| {
            // Presenting, the Start button has stepped aside with the settings.
            ui.heading(if app.state.present {
                "Ctrl+Enter trains the network in the builder (F11 shows the settings)."
            } else {
                "Press Start to train the network in the builder."
            });
            ui.label("Loss, accuracy and the gradient that reaches every layer appear here as it trains.");
            ui.label("Tick runs in the list to overlay them: a plain net next to its residual twin is the point.");
        });
        return;
    }
    let show = [app.state.show_output_grad, app.state.show_weight_grad];
    ui.horizontal(|ui| {
        if ui
            .button("Reset zoom")
            .on_hover_text(
                "Back to each plot's full view. The wheel scrolls the page; Ctrl + wheel zooms a plot; drag to pan; hover for values.",
            )
            .clicked()
        {
            commands.push(AppCommand::ResetPlotViews);
        }
        ui.weak("Ctrl + wheel zooms, drag pans, hover reads a value");
    });
    let groups = lines_ui(ui, &mut app.state.group_seeds, &visible);
    if plots::boundary::any(&visible) {
        ui.strong("Decision boundary")
            .on_hover_text("The class each net predicts over the plane, redrawn every 10 steps, with the training points");
        plots::boundary::boundaries_ui(ui, &visible);
        ui.separator();
    }
    let view = &mut app.plot_view;
    ui.columns(2, |columns| {
        plots::plot_title(&mut columns[0], "Loss", "Train loss (smoothed over 10 steps) and test loss after each epoch; log scale");
        series::loss_plot_ui(&mut columns[0], &visible, &groups, view, commands);
        plots::plot_title(&mut columns[1], "Accuracy", "Train accuracy (smoothed) and test accuracy");
        series::accuracy_plot_ui(&mut columns[1], &visible, &groups, view, commands);
    });
    ui.separator();
    ui.horizontal(|ui| {
        ui.strong("Gradients");
        ui.checkbox(&mut app.state.show_output_grad, "∂L/∂output (solid; where vanishing shows)");
        ui.checkbox(&mut app.state.show_weight_grad, "∂L/∂weights (dashed)");
    });
    let selected = app.runs.selected().filter(|r| r.visible).or(visible.last().copied());
    if let Some(run) = selected {
        ui.label(explanation(run));
    }
    let view = &mut app.plot_view;
    ui.columns(2, |columns| {
        plots::plot_title(
            &mut columns[0],
            "Gradient norm per layer (latest probe)",
            "Layer 1 is the first block with weights; overlay runs to compare",
        );
        series::gradient_layers_plot_ui(&mut columns[0], &visible, show, view, commands);
        plots::plot_title(&mut columns[1], "First layer's gradient over training", "The gradient reaching the first block at every probe");
        series::first_layer_plot_ui(&mut columns[1], &visible, show, view, commands);
    });
    if let Some(run) = selected {
        ui.weak(format!(
            "↓ Below: {}'s gradient heatmap (layer × step), architecture probes, confusion matrix and per-class accuracy.",
            run.label
        ));
    }
    let (show_output, show_weight) = (show[0], show[1]);
    let Some(run) = selected.cloned() else { return };
    ui.separator();
    plots::plot_title(
        ui,
        &format!("Gradient heatmap: {} (layer x step, log colour)", run.name),
        "Click a run in the list to choose which run's heatmap is shown",
    );
    heatmap::heatmap_ui(ui, &run, show_output || !show_weight, &mut app.heatmap, commands);
    ui.separator();
    ui.columns(2, |columns| {
        plots::plot_title(&mut columns[0], "Architecture probes", "Highway gates, stochastic-depth drops, fractal paths");
        series::probes_plot_ui(&mut columns[0], &run, commands);
        plots::plot_title(&mut columns[1], "Confusion matrix (latest evaluation)", "Rows: true class; columns: predicted class");
        plots::confusion::confusion_ui(&mut columns[1], &run, commands);
    });
}

#[cfg(test)]
mod tests {
    use super::first_to_last_hidden;

    #[test]
    fn the_gradient_ratio_leaves_the_classifier_out() {
        // ResNet-1202 at its default init, step 0: stem, blocks, classifier.
        let exploding = [20.8, 9.56, 0.0172, 0.210];
        assert!(first_to_last_hidden(&exploding).unwrap() > 1e3);
        // With a zero start: flat through the blocks.
        let flat = [0.00452, 0.00452, 0.0137, 0.168];
        assert!((first_to_last_hidden(&flat).unwrap() - 0.33).abs() < 0.01);
        assert_eq!(first_to_last_hidden(&[2.0, 4.0]), Some(0.5));
        assert_eq!(first_to_last_hidden(&[]), None);
    }
}
