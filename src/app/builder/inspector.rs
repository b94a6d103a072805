//! The inspector: every option of the selected block, and the network-wide
//! settings. Edits change the architecture directly; the builder turns each
//! finished edit into one undo step.

use egui::{DragValue, Slider};

use super::BuilderState;
use crate::app::command::AppCommand;
use crate::arch::{Activation, BRANCH_LAYERS, BlockKind, BlockSpec, Carry, Init, Norm, ResidualInit, Shortcut, StochasticDepth};

pub fn inspector_ui(ui: &mut egui::Ui, builder: &mut BuilderState, commands: &mut Vec<AppCommand>) {
    ui.heading("Inspector");
    match builder.selected {
        Some(i) if i < builder.arch.blocks.len() => {
            let error = builder.analysis.error_for(i).map(|e| e.message.clone());
            let count = builder.arch.blocks.len();
            ui.horizontal(|ui| {
                ui.strong(format!("block {}: {}", i + 1, builder.arch.blocks[i].kind.title()));
            });
            ui.label(builder.arch.blocks[i].kind.explanation());
            if let Some(message) = error {
                ui.colored_label(ui.visuals().error_fg_color, format!("error: {message}"));
            }
            ui.horizontal(|ui| {
                if ui.add_enabled(i > 0, egui::Button::new("Move up")).clicked() {
                    commands.push(AppCommand::MoveBlock { from: i, to: i - 1 });
                }
                if ui.add_enabled(i + 1 < count, egui::Button::new("Move down")).clicked() {
                    commands.push(AppCommand::MoveBlock { from: i, to: i + 2 });
                }
                if ui.button("Duplicate").on_hover_text("Ctrl+D").clicked() {
                    commands.push(AppCommand::DuplicateBlock(i));
                }
                if ui.button("Delete").on_hover_text("Delete key").clicked() {
                    commands.push(AppCommand::DeleteBlock(i));
                }
            });
            ui.separator();
            block_editor(ui, &mut builder.arch.blocks[i]);
        }
        _ => {
            ui.weak("Click a block to edit its options.");
        }
    }
    ui.separator();
    network_editor(ui, builder);
}

fn labelled<R>(ui: &mut egui::Ui, grid_label: &str, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    ui.label(grid_label);
    let r = add(ui);
    ui.end_row();
    r
}

fn count(ui: &mut egui::Ui, label: &str, value: &mut usize, range: std::ops::RangeInclusive<usize>, hint: &str) {
    labelled(ui, label, |ui| ui.add(DragValue::new(value).range(range).speed(0.2)).on_hover_text(hint));
}

fn probability(ui: &mut egui::Ui, label: &str, value: &mut f32, max: f32, hint: &str) {
    labelled(ui, label, |ui| ui.add(Slider::new(value, 0.0..=max).step_by(0.01)).on_hover_text(hint));
}

fn choice<T: PartialEq + Copy>(ui: &mut egui::Ui, label: &str, value: &mut T, options: &[(T, &str)], hint: &str) {
    labelled(ui, label, |ui| {
        let current = options.iter().find(|(v, _)| v == value).map_or("?", |(_, n)| *n);
        egui::ComboBox::from_id_salt(label)
            .selected_text(current)
            .show_ui(ui, |ui| {
                for (v, name) in options {
                    ui.selectable_value(value, *v, *name);
                }
            })
            .response
            .on_hover_text(hint)
    });
}

/// The editor of one block's options.
pub fn block_editor(ui: &mut egui::Ui, block: &mut BlockSpec) {
    egui::Grid::new("block-options").num_columns(2).spacing([12.0, 6.0]).show(ui, |ui| {
        count(ui, "repeat", &mut block.repeat, 1..=1000, "The block is applied this many times in a row; a stride applies to the first copy only");
        match &mut block.kind {
            BlockKind::Conv { filters, kernel, stride } => {
                count(ui, "filters", filters, 1..=2048, "Output channels");
                choice(ui, "kernel", kernel, &[(1, "1x1"), (3, "3x3"), (5, "5x5"), (7, "7x7")], "Kernel size (padded to keep the map size)");
                choice(ui, "stride", stride, &[(1, "1"), (2, "2")], "Stride 2 halves the map");
            }
            BlockKind::Dense { units } => count(ui, "units", units, 1..=8192, "Output features"),
            BlockKind::Residual { filters, stride, bottleneck, preactivation, shortcut, survival, branch_layers, residual_init } => {
                count(ui, "filters", filters, 1..=2048, "Output channels (bottleneck width: the output has 4x as many)");
                choice(ui, "stride", stride, &[(1, "1"), (2, "2")], "Stride 2 halves the map; the shortcut must then change shape too");
                labelled(ui, "bottleneck", |ui| ui.checkbox(bottleneck, "1x1-3x3-1x1").on_hover_text("Bottleneck block with expansion 4 (ResNet-50+, preact-164)"));
                if *bottleneck {
                    // A bottleneck always holds 3 layers.
                    *branch_layers = 2;
                } else {
                    branch_layers_ui(ui, branch_layers, "3x3 convs");
                }
                labelled(ui, "pre-activation", |ui| {
                    ui.checkbox(preactivation, "BN-ReLU-conv").on_hover_text("He et al. 2016b: nothing after the addition, a clean identity path")
                });
                choice(
                    ui,
                    "shortcut",
                    shortcut,
                    &[(Shortcut::A, "A: zero-pad"), (Shortcut::B, "B: project on change"), (Shortcut::C, "C: always project"), (Shortcut::None, "none (plain)")],
                    "How the input reaches the addition when the shape changes: A pads channels with zeros (no parameters), B uses a 1x1 conv; none removes the shortcut",
                );
                survival_ui(ui, survival);
                residual_init_ui(ui, residual_init);
            }
            BlockKind::ResidualDense { units, branch_layers, preactivation, shortcut, survival, residual_init } => {
                count(ui, "units", units, 1..=8192, "Output features; a change of width makes the shortcut a projection");
                branch_layers_ui(ui, branch_layers, "dense layers");
                labelled(ui, "pre-activation", |ui| {
                    ui.checkbox(preactivation, "BN-act-dense").on_hover_text("He et al. 2016b: nothing after the addition, a clean identity path")
                });
                choice(
                    ui,
                    "shortcut",
                    shortcut,
                    &[(Shortcut::B, "B: project on change"), (Shortcut::C, "C: always project"), (Shortcut::None, "none (plain)")],
                    "Identity, or a dense projection when the width changes (B) or always (C); none removes the shortcut",
                );
                survival_ui(ui, survival);
                residual_init_ui(ui, residual_init);
            }
            BlockKind::Highway { kernel, carry, gate_bias } => {
                choice(ui, "kernel", kernel, &[(1, "1x1"), (3, "3x3"), (5, "5x5")], "Kernel of H, T (and C)");
                highway_options(ui, carry, gate_bias);
            }
            BlockKind::HighwayDense { carry, gate_bias } => highway_options(ui, carry, gate_bias),
            BlockKind::Fractal { columns, filters, local_drop, global_ratio } => {
                count(ui, "columns C", columns, 1..=6, "Columns of depth 1, 2, 4, …, 2^(C-1)");
                count(ui, "filters", filters, 1..=1024, "Output channels of every conv");
                probability(ui, "local drop-path", local_drop, 0.9, "Each join input is dropped with this probability (one always survives)");
                probability(ui, "global ratio", global_ratio, 1.0, "Fraction of batches trained with a single whole column");
            }
            BlockKind::DenseBlock { layers, growth_rate, bottleneck } => {
                count(ui, "layers", layers, 1..=200, "Layers in the block");
                count(ui, "growth rate k", growth_rate, 1..=256, "Channels each layer adds");
                labelled(ui, "bottleneck", |ui| ui.checkbox(bottleneck, "1x1 to 4k first (DenseNet-B)"));
            }
            BlockKind::Transition { compression } => {
                labelled(ui, "compression θ", |ui| ui.add(Slider::new(compression, 0.1..=1.0).step_by(0.05)).on_hover_text("Output channels = θ x input channels"));
            }
            BlockKind::MaxPool { size, stride } | BlockKind::AvgPool { size, stride } => {
                count(ui, "size", size, 1..=8, "Window size");
                count(ui, "stride", stride, 1..=8, "Step between windows");
            }
            BlockKind::Dropout { p } => probability(ui, "p", p, 0.95, "Probability a unit is zeroed in training"),
            BlockKind::GlobalAvgPool | BlockKind::NormAct | BlockKind::Classifier => {}
        }
        if block.kind.has_layers() {
            let layer = &mut block.layer;
            choice(
                ui,
                "activation",
                &mut layer.activation,
                &[(Activation::Relu, "ReLU"), (Activation::Tanh, "tanh"), (Activation::Sigmoid, "sigmoid"), (Activation::Linear, "linear")],
                "Sigmoid and tanh saturate: deep plain stacks of them show vanishing gradients",
            );
            choice(ui, "normalisation", &mut layer.norm, &[(Norm::Batchnorm, "batch norm"), (Norm::None, "none")], "Batch normalisation keeps activations (and gradients) in range");
            choice(
                ui,
                "initialisation",
                &mut layer.init,
                &[(Init::He, "He (normal, 2/fan_in)"), (Init::Xavier, "Xavier/Glorot"), (Init::Standard, "standard U(±1/√fan_in)")],
                "Glorot & Bengio compare 'standard' with their normalised (Xavier) init",
            );
        }
    });
}

/// How the residual branch starts (what each choice does is in the hint;
/// the block's error line says when a choice does not fit the block).
fn residual_init_ui(ui: &mut egui::Ui, residual_init: &mut ResidualInit) {
    choice(
        ui,
        "branch init",
        residual_init,
        &[
            (ResidualInit::Default, "default (He et al.)"),
            (ResidualInit::Zero, "zero (last BN γ = 0)"),
            (ResidualInit::Skipinit, "SkipInit (α = 0)"),
            (ResidualInit::Fixup, "Fixup (no BN)"),
        ],
        "How the residual branch starts. Default: every layer by its own init, so each block adds its variance and a \
         1,000-layer net starts with huge logits. Zero: the branch's last BN γ (or last layer) starts at 0 (Goyal et al. 2017). \
         SkipInit: a learnable α = 0 multiplies the branch (De & Smith 2020). Fixup: no BN, branch layers scaled by depth, \
         the last at 0 (Zhang et al. 2019). The last three start every block as its shortcut: depth is free at the start.",
    );
}

/// A residual branch's length: 1 to 4 weight layers.
fn branch_layers_ui(ui: &mut egui::Ui, branch_layers: &mut usize, what: &str) {
    count(
        ui,
        "branch layers",
        branch_layers,
        BRANCH_LAYERS,
        &format!("{what} in the residual branch F (He et al. use 2; 1 makes F close to a single linear layer)"),
    );
}

/// Stochastic depth of one residual block: a fixed survival, or the network's rule.
fn survival_ui(ui: &mut egui::Ui, survival: &mut Option<f32>) {
    let mut fixed = survival.is_some();
    labelled(ui, "stochastic depth", |ui| {
        ui.checkbox(&mut fixed, "fixed survival")
            .on_hover_text("A fixed survival probability for this block; otherwise the network's linear rule applies")
    });
    match (fixed, survival.as_mut()) {
        (true, Some(p)) => probability(ui, "survival p", p, 1.0, "Probability the residual branch is kept in training"),
        (true, None) => *survival = Some(0.8),
        (false, _) => *survival = None,
    }
}

fn highway_options(ui: &mut egui::Ui, carry: &mut Carry, gate_bias: &mut f32) {
    choice(
        ui,
        "carry gate",
        carry,
        &[(Carry::Coupled, "coupled: C = 1 - T"), (Carry::Independent, "independent weights")],
        "Srivastava et al. couple C = 1 - T; an independent carry gate has its own weights",
    );
    labelled(ui, "gate bias b_T", |ui| {
        ui.add(Slider::new(gate_bias, -6.0..=2.0).step_by(0.5))
            .on_hover_text("Negative: the layer starts close to the identity (deeper nets need more negative)")
    });
}

fn network_editor(ui: &mut egui::Ui, builder: &mut BuilderState) {
    ui.strong("Network");
    egui::Grid::new("network-options").num_columns(2).spacing([12.0, 6.0]).show(ui, |ui| {
        labelled(ui, "name", |ui| {
            ui.add(egui::TextEdit::singleline(&mut builder.arch.name).desired_width(160.0)).on_hover_text("Name of the network")
        });
        let mut on = builder.arch.stochastic_depth.is_some();
        labelled(ui, "stochastic depth", |ui| {
            ui.checkbox(&mut on, "linear decay").on_hover_text("Huang et al. 2016: block l of L survives with p_l = 1 - (l/L)(1 - p_L)")
        });
        match (on, builder.arch.stochastic_depth.as_mut()) {
            (true, Some(sd)) => {
                labelled(ui, "final survival p_L", |ui| {
                    ui.add(Slider::new(&mut sd.final_survival, 0.05..=1.0).step_by(0.05)).on_hover_text("0.5 in the paper")
                });
            }
            (true, None) => builder.arch.stochastic_depth = Some(StochasticDepth::default()),
            (false, _) => builder.arch.stochastic_depth = None,
        }
    });
}
