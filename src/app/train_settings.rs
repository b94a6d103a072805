//! The Train tab's settings column: the training data (embedded sets, 2-D
//! planes, folders and CSV tables) and the hyperparameters of the next run,
//! section by section.

use std::path::PathBuf;

use egui::DragValue;

use super::DepthLabApp;
use super::command::AppCommand;
use super::tasks::Pick;
use crate::arch::{Activation, Init, LayerOverrides, Norm, ResidualInit};
use crate::backend::BackendChoice;
use crate::data::{DataSpec, SYSTEM_FASHION_MNIST};
use crate::train::{OptimizerKind, Schedule, TrainConfig};

/// The Train tab's settings, under the Start button: the data, then the
/// hyperparameters in one grid, a few rows per section.
pub(super) fn settings_ui(ui: &mut egui::Ui, app: &mut DepthLabApp, commands: &mut Vec<AppCommand>) {
    let training = app.is_training();
    ui.strong("Data");
    ui.add_enabled_ui(!training, |ui| data_choice_ui(ui, app, commands));
    ui.add_space(4.0);
    ui.strong("Hyperparameters");
    let t = &mut app.state.train;
    ui.add_enabled_ui(!training, |ui| {
        egui::Grid::new("hyper").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| {
            optimiser_rows_ui(ui, t);
            schedule_rows_ui(ui, t);
            budget_rows_ui(ui, t);
            run_rows_ui(ui, t);
            compute_rows_ui(ui, t);
            layers_row_ui(ui, &mut t.overrides, "train");
            branch_init_row_ui(ui, &mut t.overrides, "train");
        });
    });
}

/// The optimiser, SGD's momentum, and weight decay.
fn optimiser_rows_ui(ui: &mut egui::Ui, t: &mut TrainConfig) {
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
    ui.add(DragValue::new(&mut t.weight_decay).speed(1e-5).range(0.0..=0.1).max_decimals(6)).on_hover_text("L2 penalty (He et al.: 1e-4)");
    ui.end_row();
}

/// The learning-rate schedule and its warm-up.
fn schedule_rows_ui(ui: &mut egui::Ui, t: &mut TrainConfig) {
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
}

/// How long a run trains: the batch size, epochs and an optional cap in steps.
fn budget_rows_ui(ui: &mut egui::Ui, t: &mut TrainConfig) {
    ui.label("batch size");
    ui.add(DragValue::new(&mut t.batch_size).range(1..=4096)).on_hover_text("Examples per step");
    ui.end_row();
    ui.label("epochs");
    ui.add(DragValue::new(&mut t.epochs).range(1..=1000)).on_hover_text("Passes over the training data");
    ui.end_row();
    ui.label("max steps");
    ui.horizontal(|ui| {
        let mut limited = t.max_steps.is_some();
        ui.checkbox(&mut limited, "").on_hover_text("Stop after a number of steps, or at the end of the epochs if that comes first");
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
}

/// The seed, how often the gradients are probed, and augmentation.
fn run_rows_ui(ui: &mut egui::Ui, t: &mut TrainConfig) {
    ui.label("seed");
    ui.add(DragValue::new(&mut t.seed)).on_hover_text("Same seed: same initial weights and batch order");
    ui.end_row();
    ui.label("probe every");
    ui.add(DragValue::new(&mut t.probe_every).range(0..=10_000).suffix(" steps")).on_hover_text("Gradient probe interval (0: never)");
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
}

/// Where a run computes: the backend and, on the CPU, how many cores.
fn compute_rows_ui(ui: &mut egui::Ui, t: &mut TrainConfig) {
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
                ui.add(DragValue::new(n).range(1..=cores.max(1)))
                    .on_hover_text("Cores this run computes on: fewer leave room for other runs or programs; results do not change");
            }
            (false, None) => t.threads = Some((cores / 2).max(1)),
            (true, _) => t.threads = None,
        }
    });
    ui.end_row();
}

/// Overrides of every layer: activation, initialisation, batch norm.
pub(super) fn layers_row_ui(ui: &mut egui::Ui, o: &mut LayerOverrides, salt: &str) {
    ui.label("layers");
    ui.horizontal(|ui| {
        let mut override_act = o.activation.is_some();
        ui.checkbox(&mut override_act, "all").on_hover_text("Override the activation of every layer");
        if override_act {
            let act = o.activation.get_or_insert(Activation::Sigmoid);
            egui::ComboBox::from_id_salt(("override-activation", salt))
                .selected_text(format!("{act:?}").to_lowercase())
                .show_ui(ui, |ui| {
                    for a in [Activation::Relu, Activation::Tanh, Activation::Sigmoid, Activation::Linear] {
                        ui.selectable_value(act, a, format!("{a:?}").to_lowercase());
                    }
                })
                .response
                .on_hover_text("Activation of every layer");
        } else {
            o.activation = None;
        }
        let init_text = o.init.map_or("init as built".to_string(), |i| format!("init {i:?}").to_lowercase());
        egui::ComboBox::from_id_salt(("override-init", salt))
            .selected_text(init_text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut o.init, None, "as built");
                for i in [Init::He, Init::Xavier, Init::Standard] {
                    ui.selectable_value(&mut o.init, Some(i), format!("{i:?}").to_lowercase());
                }
            })
            .response
            .on_hover_text("Weight initialisation of every layer (--init): He, Xavier (Glorot & Bengio) or the standard U(-1/√n, 1/√n)");
        let mut no_bn = o.norm == Some(Norm::None);
        if ui.checkbox(&mut no_bn, "no BN").on_hover_text("Remove batch normalisation everywhere").changed() {
            o.norm = no_bn.then_some(Norm::None);
        }
    });
    ui.end_row();
}

/// How every residual branch starts.
pub(super) fn branch_init_row_ui(ui: &mut egui::Ui, o: &mut LayerOverrides, salt: &str) {
    ui.label("branch init");
    let text = o.residual_init.map_or("as built".to_string(), |r| r.word().to_string());
    egui::ComboBox::from_id_salt(("override-residual-init", salt))
        .selected_text(text)
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut o.residual_init, None, "as built");
            for r in ResidualInit::ALL {
                ui.selectable_value(&mut o.residual_init, Some(r), r.word());
            }
        })
        .response
        .on_hover_text(
            "How every residual branch starts (--residual-init): default (He init, each block adds its variance), \
             zero (last BN γ = 0), skipinit (a learnable α = 0 on the branch) or fixup (with no BN). \
             A zero start lets a 1,000-layer net start as the identity.",
        );
    ui.end_row();
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
        if p.shape == crate::data::plane::PlaneShape::Spiral {
            ui.horizontal(|ui| {
                ui.label("turns");
                ui.add(egui::DragValue::new(&mut p.turns).range(crate::data::plane::TURNS).speed(0.05))
                    .on_hover_text("How far each arm winds: Playground's 1.75, fewer is easier");
            });
        }
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
