//! The Train tab: data and hyperparameters, Start / Pause / Stop, the
//! learning rate while running, the run list, and the live plots.

use std::path::PathBuf;

use egui::{DragValue, RichText};

use super::DepthLabApp;
use super::command::AppCommand;
use super::plots::{self, heatmap, series};
use super::runs::RunView;
use super::tasks::Pick;
use crate::arch::{Activation, Init, Norm, ResidualInit};
use crate::backend::BackendChoice;
use crate::data::{DataSpec, SYSTEM_FASHION_MNIST};
use crate::train::{OptimizerKind, Schedule};

pub fn train_tab_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    egui::Panel::left("train-settings").resizable(true).default_size(330.0).show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("train-settings-scroll").show(ui, |ui| {
            controls_ui(ui, app, commands);
            ui.separator();
            settings_ui(ui, app, commands);
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

fn data_choice_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let data = &mut app.state.train.data;
    let system = std::path::Path::new(SYSTEM_FASHION_MNIST);
    egui::ComboBox::from_id_salt("data-choice")
        .selected_text(data.label())
        .width(220.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(data, DataSpec::FashionMini, "fashion-mini (embedded)");
            ui.selectable_value(data, DataSpec::Digits, "digits 8x8 (embedded)");
            if system.is_dir() {
                ui.selectable_value(data, DataSpec::FashionMnist { dir: system.into() }, "Fashion-MNIST (installed)");
            }
            ui.separator();
            for shape in crate::data::plane::PlaneShape::ALL {
                let chosen = matches!(data, DataSpec::Plane(p) if p.shape == shape);
                if ui.selectable_label(chosen, format!("{} (2-D)", shape.name())).clicked() && !chosen {
                    *data = DataSpec::Plane(crate::data::plane::PlaneSpec::new(shape));
                }
            }
            ui.separator();
            let folder_kinds = [
                ("MNIST / Fashion-MNIST IDX folder", DataSpec::Mnist { dir: PathBuf::new() }),
                ("CIFAR-10 folder (cifar-10-batches-bin)", DataSpec::Cifar10 { dir: PathBuf::new() }),
                (
                    "image folder (one subfolder per class)",
                    DataSpec::Folder { dir: PathBuf::new(), shape: crate::arch::Shape::map(3, 32, 32) },
                ),
            ];
            let table = DataSpec::Csv(crate::data::csv::CsvSpec { file: PathBuf::new(), label: None, test: None });
            for (label, spec) in folder_kinds.into_iter().chain([("table (CSV file: a header, numeric features, a label)", table)]) {
                let same_kind = std::mem::discriminant(data) == std::mem::discriminant(&spec);
                if ui.selectable_label(same_kind, label).clicked() && !same_kind {
                    *data = spec;
                }
            }
        })
        .response
        .on_hover_text("Training data");
    if let DataSpec::Plane(p) = &mut app.state.train.data {
        ui.horizontal(|ui| {
            ui.label("points");
            ui.add(egui::DragValue::new(&mut p.points).range(1..=crate::data::plane::MAX_POINTS).speed(10.0))
                .on_hover_text("Training points (the test split has half as many more)");
            ui.label("noise");
            ui.add(egui::DragValue::new(&mut p.noise).range(0.0..=10.0).speed(0.01));
        });
        ui.horizontal(|ui| {
            ui.label("classes");
            let choosable = matches!(p.shape, crate::data::plane::PlaneShape::Spiral | crate::data::plane::PlaneShape::Blobs);
            ui.add_enabled(choosable, egui::DragValue::new(&mut p.classes).range(2..=crate::data::plane::MAX_CLASSES))
                .on_disabled_hover_text("Only spiral and blobs take a number of classes");
            ui.label("seed");
            ui.add(egui::DragValue::new(&mut p.seed));
        });
    }
    let dialogs = app.options.dialogs;
    let folder = match &mut app.state.train.data {
        DataSpec::Mnist { dir } | DataSpec::Cifar10 { dir } | DataSpec::Folder { dir, .. } => Some(dir),
        DataSpec::FashionMnist { dir } if dir.as_path() != system => Some(dir),
        _ => None,
    };
    if let Some(dir) = folder {
        ui.horizontal(|ui| {
            let mut text = dir.display().to_string();
            if ui.add(egui::TextEdit::singleline(&mut text).hint_text("folder").desired_width(200.0)).on_hover_text("Data folder").changed()
            {
                *dir = PathBuf::from(text);
            }
            if dialogs && ui.button("Browse…").clicked() {
                commands.push(AppCommand::PickFile(Pick::DataFolder));
            }
        });
    }
    if let DataSpec::Csv(spec) = &mut app.state.train.data {
        table_ui(ui, spec, dialogs, commands);
    }
    if let DataSpec::Folder { shape, .. } = &mut app.state.train.data {
        let mut text = shape.to_string();
        ui.horizontal(|ui| {
            ui.label("image size");
            if ui.add(egui::TextEdit::singleline(&mut text).desired_width(80.0)).on_hover_text("CxHxW, e.g. 3x32x32 or 1x28x28").changed()
                && let Ok(s @ crate::arch::Shape::Map { .. }) = crate::arch::Shape::parse(&text)
            {
                *shape = s;
            }
        });
    }
}

/// The CSV file, its label column and optional test file.
fn table_ui(ui: &mut egui::Ui, spec: &mut crate::data::csv::CsvSpec, dialogs: bool, commands: &mut Vec<AppCommand>) {
    let path_field = |ui: &mut egui::Ui, path: &mut PathBuf, hint: &str| {
        let mut text = path.display().to_string();
        if ui.add(egui::TextEdit::singleline(&mut text).hint_text(hint).desired_width(200.0)).changed() {
            *path = PathBuf::from(text);
        }
    };
    ui.horizontal(|ui| {
        path_field(ui, &mut spec.file, "CSV file");
        if dialogs && ui.button("Browse…").clicked() {
            commands.push(AppCommand::PickFile(Pick::DataTable));
        }
    });
    ui.horizontal(|ui| {
        ui.label("label column");
        let mut label = spec.label.clone().unwrap_or_default();
        if ui.add(egui::TextEdit::singleline(&mut label).hint_text("the last").desired_width(90.0)).changed() {
            spec.label = Some(label.trim().to_string()).filter(|l| !l.is_empty());
        }
    });
    ui.horizontal(|ui| {
        ui.label("test file");
        let mut test = spec.test.clone().unwrap_or_default();
        path_field(ui, &mut test, "every fifth row");
        spec.test = Some(test).filter(|t| !t.as_os_str().is_empty());
    })
    .response
    .on_hover_text("Without a test file every fifth row is held out for testing");
}

fn settings_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let training = app.is_training();
    ui.strong("Data");
    ui.add_enabled_ui(!training, |ui| data_choice_ui(ui, app, commands));
    ui.add_space(4.0);
    ui.strong("Hyperparameters");
    let t = &mut app.state.train;
    ui.add_enabled_ui(!training, |ui| {
        egui::Grid::new("hyper").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| {
            ui.label("optimiser");
            egui::ComboBox::from_id_salt("optimizer")
                .selected_text(match t.optimizer {
                    OptimizerKind::Sgd => "SGD",
                    OptimizerKind::Adam => "Adam",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut t.optimizer, OptimizerKind::Sgd, "SGD (momentum)");
                    ui.selectable_value(&mut t.optimizer, OptimizerKind::Adam, "Adam");
                })
                .response
                .on_hover_text("Optimiser");
            ui.end_row();
            if t.optimizer == OptimizerKind::Sgd {
                ui.label("momentum");
                ui.horizontal(|ui| {
                    ui.add(DragValue::new(&mut t.momentum).speed(0.01).range(0.0..=0.99)).on_hover_text("SGD momentum");
                    ui.checkbox(&mut t.nesterov, "Nesterov");
                });
                ui.end_row();
            }
            ui.label("weight decay");
            ui.add(DragValue::new(&mut t.weight_decay).speed(1e-5).range(0.0..=0.1).max_decimals(6))
                .on_hover_text("L2 penalty (He et al.: 1e-4)");
            ui.end_row();
            ui.label("schedule");
            let current = match &t.schedule {
                Schedule::Constant => "constant",
                Schedule::Step { .. } => "step ÷10 at 50%, 75%",
                Schedule::Cosine => "cosine",
            };
            egui::ComboBox::from_id_salt("schedule")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut t.schedule, Schedule::Constant, "constant");
                    ui.selectable_value(&mut t.schedule, Schedule::Step { milestones: vec![0.5, 0.75] }, "step ÷10 at 50%, 75%");
                    ui.selectable_value(&mut t.schedule, Schedule::Cosine, "cosine");
                })
                .response
                .on_hover_text("Learning-rate schedule");
            ui.end_row();
            ui.label("warm-up steps");
            ui.add(DragValue::new(&mut t.warmup_steps).range(0..=100_000)).on_hover_text("Linear warm-up from 0");
            ui.end_row();
            ui.label("batch size");
            ui.add(DragValue::new(&mut t.batch_size).range(1..=4096)).on_hover_text("Examples per step");
            ui.end_row();
            ui.label("epochs");
            ui.add(DragValue::new(&mut t.epochs).range(1..=1000)).on_hover_text("Passes over the training data");
            ui.end_row();
            ui.label("max steps");
            ui.horizontal(|ui| {
                let mut limited = t.max_steps.is_some();
                ui.checkbox(&mut limited, "")
                    .on_hover_text("Stop after a number of steps, or at the end of the epochs if that comes first");
                match (limited, &mut t.max_steps) {
                    (true, Some(n)) => {
                        ui.add(DragValue::new(n).range(1..=10_000_000))
                            .on_hover_text("At most this many steps: the epochs above end the run first if they hold fewer");
                    }
                    (true, None) => t.max_steps = Some(200),
                    (false, _) => t.max_steps = None,
                }
            });
            ui.end_row();
            ui.label("seed");
            ui.add(DragValue::new(&mut t.seed)).on_hover_text("Same seed: same initial weights and batch order");
            ui.end_row();
            ui.label("probe every");
            ui.add(DragValue::new(&mut t.probe_every).range(0..=10_000).suffix(" steps"))
                .on_hover_text("Gradient probe interval (0: never)");
            ui.end_row();
            ui.label("augmentation");
            egui::ComboBox::from_id_salt("augment")
                .selected_text(match t.augment {
                    None => "dataset default",
                    Some(true) => "crop + flip",
                    Some(false) => "none",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut t.augment, None, "dataset default");
                    ui.selectable_value(&mut t.augment, Some(true), "crop + flip");
                    ui.selectable_value(&mut t.augment, Some(false), "none");
                })
                .response
                .on_hover_text("Pad-4 random crop and horizontal flip");
            ui.end_row();
            ui.label("backend");
            egui::ComboBox::from_id_salt("backend")
                .selected_text(format!("{:?}", t.backend).to_lowercase())
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut t.backend, BackendChoice::Auto, "auto (GPU if there is one)");
                    ui.selectable_value(&mut t.backend, BackendChoice::Wgpu, "wgpu");
                    ui.selectable_value(&mut t.backend, BackendChoice::Cuda, "cuda (NVIDIA)");
                    ui.selectable_value(&mut t.backend, BackendChoice::Cpu, "cpu");
                })
                .response
                .on_hover_text("Compute backend");
            ui.end_row();
            ui.label("CPU threads");
            ui.horizontal(|ui| {
                let cores = crate::util::threads::available();
                let mut all = t.threads.is_none();
                ui.checkbox(&mut all, "all cores").on_hover_text(format!("Compute on every core ({cores} here)"));
                match (all, &mut t.threads) {
                    (false, Some(n)) => {
                        ui.add(DragValue::new(n).range(1..=cores.max(1))).on_hover_text(
                            "Cores this run computes on: fewer leave room for other runs or programs; results do not change",
                        );
                    }
                    (false, None) => t.threads = Some((cores / 2).max(1)),
                    (true, _) => t.threads = None,
                }
            });
            ui.end_row();
            ui.label("layers");
            ui.horizontal(|ui| {
                let mut override_act = t.overrides.activation.is_some();
                ui.checkbox(&mut override_act, "all").on_hover_text("Override the activation of every layer");
                if override_act {
                    let act = t.overrides.activation.get_or_insert(Activation::Sigmoid);
                    egui::ComboBox::from_id_salt("override-activation")
                        .selected_text(format!("{act:?}").to_lowercase())
                        .show_ui(ui, |ui| {
                            for a in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Linear] {
                                ui.selectable_value(act, a, format!("{a:?}").to_lowercase());
                            }
                        })
                        .response
                        .on_hover_text("Activation of every layer");
                } else {
                    t.overrides.activation = None;
                }
                let init_text = t.overrides.init.map_or("init as built".to_string(), |i| format!("init {i:?}").to_lowercase());
                egui::ComboBox::from_id_salt("override-init")
                    .selected_text(init_text)
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut t.overrides.init, None, "as built");
                        for i in [Init::He, Init::Xavier, Init::Standard] {
                            ui.selectable_value(&mut t.overrides.init, Some(i), format!("{i:?}").to_lowercase());
                        }
                    })
                    .response
                    .on_hover_text(
                        "Weight initialisation of every layer (--init): He, Xavier (Glorot & Bengio) or the standard U(-1/√n, 1/√n)",
                    );
                let mut no_bn = t.overrides.norm == Some(Norm::None);
                if ui.checkbox(&mut no_bn, "no BN").on_hover_text("Remove batch normalisation everywhere").changed() {
                    t.overrides.norm = no_bn.then_some(Norm::None);
                }
            });
            ui.end_row();
            ui.label("branch init");
            let text = t.overrides.residual_init.map_or("as built".to_string(), |r| r.word().to_string());
            egui::ComboBox::from_id_salt("override-residual-init")
                .selected_text(text)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut t.overrides.residual_init, None, "as built");
                    for r in ResidualInit::ALL {
                        ui.selectable_value(&mut t.overrides.residual_init, Some(r), r.word());
                    }
                })
                .response
                .on_hover_text(
                    "How every residual branch starts (--residual-init): default (He init, each block adds its variance), \
                     zero (last BN γ = 0), skipinit (a learnable α = 0 on the branch) or fixup (with no BN). \
                     A zero start lets a 1,000-layer net start as the identity.",
                );
            ui.end_row();
        });
    });
}

/// The first layer's output gradient over the last hidden layer's (the
/// layer before the classifier, whose gradient is the loss's own slope
/// and says nothing of depth); with two layers or fewer, over the last.
fn first_to_last_hidden(output: &[f32]) -> Option<f32> {
    let first = *output.first()?;
    let last = if output.len() >= 3 { output[output.len() - 2] } else { *output.last()? };
    Some(first / last.max(f32::MIN_POSITIVE))
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
            ui.heading("Press Start to train the network in the builder.");
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
    plots::run_legend_ui(ui, &visible, "solid: train · dashed: test · ×: diverged");
    if plots::boundary::any(&visible) {
        ui.strong("Decision boundary")
            .on_hover_text("The class each net predicts over the plane, redrawn every 10 steps, with the training points");
        plots::boundary::boundaries_ui(ui, &visible);
        ui.separator();
    }
    let view = &mut app.plot_view;
    ui.columns(2, |columns| {
        plots::plot_title(&mut columns[0], "Loss", "Train loss (smoothed over 10 steps) and test loss after each epoch; log scale");
        series::loss_plot_ui(&mut columns[0], &visible, view, commands);
        plots::plot_title(&mut columns[1], "Accuracy", "Train accuracy (smoothed) and test accuracy");
        series::accuracy_plot_ui(&mut columns[1], &visible, view, commands);
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
        series::confusion_ui(&mut columns[1], &run, commands);
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
