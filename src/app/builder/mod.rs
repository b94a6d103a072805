//! The network builder: a palette of every block kind, the stack of blocks
//! (drag to add and reorder, repeats collapsed into one row), an inspector
//! for the selected block, presets with their depth control, undo/redo and
//! architecture files.

pub mod diagram;
mod inspector;
mod palette;
mod stack;

use std::collections::HashSet;

use crate::arch::presets::{self, Family};
use crate::arch::{Analysis, Architecture, BlockKind, Shape};

use super::command::AppCommand;
use super::history::History;
use super::tasks::Pick;

/// What is dragged in the builder.
#[derive(Clone, Debug, PartialEq)]
pub enum DragPayload {
    /// A new block from the palette.
    Palette(BlockKind),
    /// An entry of the stack being moved.
    Entry(usize),
}

/// The builder's state.
pub struct BuilderState {
    pub arch: Architecture,
    /// The architecture as of the last history snapshot.
    committed: Architecture,
    pub history: History,
    pub selected: Option<usize>,
    /// Entries whose repeated copies are listed one by one.
    pub expanded: HashSet<usize>,
    pub analysis: Analysis,
    analysed: Option<(Architecture, Shape, usize)>,
    /// The preset row: family and the index of its size.
    pub preset_family: Family,
    pub preset_size: usize,
}

impl BuilderState {
    pub fn new(arch: Architecture, input: Shape, classes: usize) -> BuilderState {
        let analysis = arch.analyse(input, classes);
        let (preset_family, preset_size) = presets::parse_name(&arch.name).unwrap_or((Family::Resnet, 20));
        BuilderState {
            committed: arch.clone(),
            arch,
            history: History::default(),
            selected: None,
            expanded: HashSet::new(),
            analysis,
            analysed: None,
            preset_family,
            preset_size,
        }
    }

    /// Re-analyses when the architecture or the input changed.
    pub fn refresh(&mut self, input: Shape, classes: usize) {
        let stale = match &self.analysed {
            Some((arch, shape, c)) => arch != &self.arch || *shape != input || *c != classes,
            None => true,
        };
        if stale {
            self.analysis = self.arch.analyse(input, classes);
            self.analysed = Some((self.arch.clone(), input, classes));
            if self.selected.is_some_and(|s| s >= self.arch.blocks.len()) {
                self.selected = None;
            }
        }
    }

    /// Records an undo step when the architecture changed and no edit is in
    /// progress (a slider being dragged becomes one step, not hundreds).
    pub fn commit(&mut self, editing: bool) {
        if !editing && self.arch != self.committed {
            self.history.record(self.committed.clone());
            self.committed = self.arch.clone();
        }
    }

    /// Replaces the whole architecture (as one undo step).
    pub fn replace(&mut self, arch: Architecture) {
        self.commit(false);
        self.arch = arch;
        self.commit(false);
        self.selected = None;
        self.expanded.clear();
        if let Some((family, size)) = presets::parse_name(&self.arch.name) {
            self.preset_family = family;
            self.preset_size = size;
        }
    }

    pub fn undo(&mut self) {
        self.commit(false);
        if let Some(previous) = self.history.undo(&self.arch) {
            self.arch = previous;
            self.committed = self.arch.clone();
        }
    }

    pub fn redo(&mut self) {
        self.commit(false);
        if let Some(next) = self.history.redo(&self.arch) {
            self.arch = next;
            self.committed = self.arch.clone();
        }
    }

    /// Whether entry `i` changes the shape of its input (how its shortcut is drawn).
    pub fn changes_shape(&self, i: usize) -> bool {
        self.analysis.entries.get(i).is_some_and(|e| match (e.input, e.output) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        })
    }
}

/// Where the builder's input shape comes from.
pub struct InputInfo {
    pub shape: Shape,
    pub classes: usize,
    pub data_label: String,
}

/// The builder tab.
pub fn builder_ui(
    ui: &mut egui::Ui,
    builder: &mut BuilderState,
    input: &InputInfo,
    arch_path: &mut String,
    dialogs: bool,
    commands: &mut Vec<AppCommand>,
) {
    egui::Panel::left("palette").resizable(true).default_size(190.0).show(ui, |ui| {
        palette::palette_ui(ui, commands);
    });
    egui::Panel::right("inspector").resizable(true).default_size(300.0).show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("inspector-scroll").show(ui, |ui| {
            inspector::inspector_ui(ui, builder, commands);
        });
    });
    egui::CentralPanel::default().show(ui, |ui| {
        toolbar_ui(ui, builder, arch_path, dialogs, commands);
        totals_ui(ui, builder, input);
        ui.separator();
        stack::stack_ui(ui, builder, commands);
    });
}

fn toolbar_ui(ui: &mut egui::Ui, builder: &mut BuilderState, arch_path: &mut String, dialogs: bool, commands: &mut Vec<AppCommand>) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Preset");
        let family_before = builder.preset_family;
        egui::ComboBox::from_id_salt("preset-family")
            .selected_text(builder.preset_family.prefix())
            .show_ui(ui, |ui| {
                for family in Family::ALL {
                    ui.selectable_value(&mut builder.preset_family, family, family.prefix()).on_hover_text(family.summary());
                }
            })
            .response
            .on_hover_text("Preset family");
        let sizes = builder.preset_family.sizes();
        if builder.preset_family != family_before || !sizes.contains(&builder.preset_size) {
            let featured = builder.preset_family.featured_sizes();
            builder.preset_size = featured.first().copied().unwrap_or(sizes[0]);
        }
        let mut index = sizes.iter().position(|&s| s == builder.preset_size).unwrap_or(0);
        let max_index = sizes.len().saturating_sub(1);
        // One valid depth per step: the buttons (and the arrow keys on the
        // slider) step to the neighbouring depth the family allows.
        let mut stepped = false;
        if ui.add_enabled(index > 0, egui::Button::new("◀").small()).on_hover_text("The next smaller valid depth").clicked() {
            index -= 1;
            stepped = true;
        }
        ui.spacing_mut().slider_width = 180.0;
        let response = ui
            .add(
                egui::Slider::new(&mut index, 0..=max_index)
                    .custom_formatter(|i, _| sizes.get(i as usize).map_or(String::new(), |s| s.to_string()))
                    .custom_parser(|text| {
                        text.trim().parse::<usize>().ok().and_then(|s| sizes.iter().position(|&x| x >= s)).map(|i| i as f64)
                    }),
            )
            .on_hover_text(format!("{}: {}", builder.preset_family.prefix(), builder.preset_family.size_meaning()));
        if ui.add_enabled(index < max_index, egui::Button::new("▶").small()).on_hover_text("The next larger valid depth").clicked() {
            index += 1;
            stepped = true;
        }
        builder.preset_size = sizes.get(index).copied().unwrap_or(builder.preset_size);
        let name = builder.preset_family.name(builder.preset_size);
        let load = ui.button(format!("Load {name}")).on_hover_text(builder.preset_family.summary());
        // Moving the depth control of the preset being shown rebuilds it at once.
        let same_family = presets::parse_name(&builder.arch.name).is_some_and(|(f, _)| f == builder.preset_family);
        // Choosing a family in the dropdown loads it at once, at its first featured size.
        let family_chosen = builder.preset_family != family_before;
        let moved = stepped || response.drag_stopped() || (response.changed() && !response.dragged());
        if load.clicked() || family_chosen || moved && same_family {
            commands.push(AppCommand::LoadPreset(name));
        }
        ui.separator();
        if ui.add_enabled(builder.history.can_undo(), egui::Button::new("Undo")).on_hover_text("Undo (Ctrl+Z)").clicked() {
            commands.push(AppCommand::Undo);
        }
        if ui.add_enabled(builder.history.can_redo(), egui::Button::new("Redo")).on_hover_text("Redo (Ctrl+Shift+Z)").clicked() {
            commands.push(AppCommand::Redo);
        }
    });
    ui.horizontal(|ui| {
        ui.label("File");
        ui.add(egui::TextEdit::singleline(arch_path).desired_width(240.0).hint_text("architecture.json"))
            .on_hover_text("Architecture file path");
        if ui.button("Save").on_hover_text("Save the architecture as JSON (Ctrl+S)").clicked() {
            commands.push(AppCommand::SaveArchitecture(arch_path.clone().into()));
        }
        if ui.button("Load").on_hover_text("Load an architecture JSON file").clicked() {
            commands.push(AppCommand::OpenArchitecture(arch_path.clone().into()));
        }
        if dialogs && ui.button("Browse…").on_hover_text("Choose a file (or drop one on the window)").clicked() {
            commands.push(AppCommand::PickFile(Pick::OpenArchitecture));
        }
        if ui.button("New").on_hover_text("Start from an empty network").clicked() {
            commands.push(AppCommand::NewArchitecture);
        }
    });
}

fn totals_ui(ui: &mut egui::Ui, builder: &BuilderState, input: &InputInfo) {
    let a = &builder.analysis;
    ui.horizontal_wrapped(|ui| {
        ui.heading(&builder.arch.name);
        if a.is_valid() {
            ui.label(format!("depth {}", a.depth)).on_hover_text("Weight layers on the longest path, counted as the papers count them");
            ui.label(format!("{} parameters", crate::util::format_params(a.params)));
        } else {
            // Counts of a net that does not fit together would mislead (they
            // stop at the first block that fails).
            ui.label("depth ?").on_hover_text("Fix the errors below to see the depth");
            ui.label("parameters ?");
        }
        ui.weak(format!("input {} from {}, {} classes", input.shape, input.data_label, input.classes));
        match a.errors.len() {
            0 => {
                ui.colored_label(egui::Color32::from_rgb(90, 180, 100), "valid");
            }
            n => {
                ui.colored_label(ui.visuals().error_fg_color, format!("{n} error{}", if n == 1 { "" } else { "s" }));
            }
        }
    });
    for e in a.errors.iter().filter(|e| e.block.is_none()) {
        ui.colored_label(ui.visuals().error_fg_color, e.to_string());
    }
}
