//! Taking things in: worker events within a time budget, background
//! results, files dropped on the window, keyboard shortcuts.

use std::path::PathBuf;
use std::time::Instant;

use super::runs::RunView;
use super::state::Tab;
use super::tasks::{Pick, TaskResult};
use super::{AppCommand, ClassifyResult, ComputeStatus, DepthLabApp, EVENT_BUDGET, read_lab_name};
use crate::arch::{Shape, presets};
use crate::data::DataSpec;
use crate::experiment::SweepEvent;
use crate::train::RunStatus;
use crate::train::events::Event;
use crate::train::runfolder::RunFolder;

impl DepthLabApp {
    pub(super) fn scan_runs(&mut self) {
        let dir = PathBuf::from(&self.state.runs_dir);
        self.tasks.spawn("scan-runs", move || {
            let mut found = Vec::new();
            let Ok(entries) = std::fs::read_dir(&dir) else { return TaskResult::RunsFound(found) };
            let mut dirs: Vec<PathBuf> =
                entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("arch.json").is_file()).collect();
            dirs.sort();
            for d in dirs {
                if let Ok(folder) = RunFolder::open(&d) {
                    let name = read_lab_name(&d);
                    found.push((folder, name));
                }
            }
            TaskResult::RunsFound(found)
        });
    }

    /// Takes in worker events and background results, within a time budget.
    pub(super) fn drain(&mut self) {
        let deadline = Instant::now() + EVENT_BUDGET;
        let mut more = false;
        if let Some(active) = &self.active {
            let run = active.run;
            let mut finished = false;
            loop {
                if Instant::now() > deadline {
                    more = true;
                    break;
                }
                match active.handle.events.try_recv() {
                    Ok(event) => {
                        finished |= matches!(event, Event::Finished(_));
                        if let Some(view) = self.runs.get_mut(run) {
                            view.apply(event);
                        }
                    }
                    Err(_) => break,
                }
            }
            if finished {
                if let Some(active) = self.active.take() {
                    active.handle.join();
                }
                if let Some(view) = self.runs.get(run) {
                    let text = match &view.summary {
                        Some(s) => format!(
                            "{} {}: test accuracy {}",
                            view.name,
                            s.status,
                            s.final_test_accuracy.map_or("-".into(), |a| format!("{:.1}%", a * 100.0))
                        ),
                        None => format!("{} ended", view.name),
                    };
                    let reason = view.summary.as_ref().and_then(|s| s.reason.clone());
                    if view.status == RunStatus::Failed {
                        self.error(format!("{text}: {}", reason.unwrap_or_default()));
                    } else if view.status == RunStatus::Diverged {
                        self.error(format!("{text}: {}. {}", reason.unwrap_or_default(), crate::train::events::DIVERGED_ADVICE));
                    } else {
                        self.info(text);
                    }
                }
            }
        }
        more |= self.drain_sweep(deadline);
        self.read_followed_sweep();
        for result in self.tasks.drain() {
            self.take_task_result(result);
        }
        if more {
            self.ctx.request_repaint();
        }
    }

    /// Reads a followed sweep folder again when it is due (on a background
    /// thread: a sweep of many runs is many files).
    fn read_followed_sweep(&mut self) {
        let Some(followed) = &mut self.sweep.followed else { return };
        let due = followed.last_read.is_none_or(|t| t.elapsed() >= super::FOLLOW_EVERY);
        if followed.reading || !due {
            self.ctx.request_repaint_after(super::FOLLOW_EVERY);
            return;
        }
        followed.reading = true;
        let dir = followed.dir.clone();
        self.tasks.spawn("follow-sweep", move || {
            let rows = crate::experiment::collect(&dir).map(|(_, rows, _)| rows);
            TaskResult::SweepCollected(dir, rows)
        });
    }

    pub(super) fn drain_sweep(&mut self, deadline: Instant) -> bool {
        let Some(handle) = &self.sweep.handle else { return false };
        let mut events = Vec::new();
        let mut more = false;
        loop {
            if Instant::now() > deadline {
                more = true;
                break;
            }
            match handle.events.try_recv() {
                Ok(e) => events.push(e),
                Err(_) => break,
            }
        }
        for event in events {
            match event {
                SweepEvent::RunStarted { index, total, label, dir } => {
                    self.sweep.progress = Some((index, total, label.clone()));
                    let id = self.runs.next_id();
                    let (family, size) =
                        presets::parse_name(label.split(' ').next().unwrap_or_default()).unwrap_or((presets::Family::Resnet, 8));
                    let arch = family.build(size, self.state.train.data.expected_shape()).unwrap_or_else(|_| self.builder.arch.clone());
                    let mut view = RunView::new(id, format!("sweep {label}"), arch, self.sweep_train_config(), None);
                    // A sweep's runs sit in their own group, out of the
                    // Train tab's plots until ticked (the Sweep tab plots them).
                    let sweep = dir.parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned());
                    view.group = Some(format!("sweep {}", sweep.unwrap_or_default()).trim_end().to_string());
                    view.visible = false;
                    self.runs.runs.push(view);
                    self.sweep.current = Some(id);
                    self.sweep.views.push((index, id, dir));
                }
                SweepEvent::Row(row) => {
                    self.sweep.finished_runs += 1;
                    // Kept rows of a resumed sweep have no view: they go last.
                    let index = self.sweep.views.iter().find(|v| v.2 == row.run_dir).map_or(usize::MAX, |v| v.0);
                    let at = self.sweep.row_order.partition_point(|&i| i <= index);
                    self.sweep.row_order.insert(at, index);
                    self.sweep.rows.insert(at, row);
                }
                SweepEvent::Run { run, event } => {
                    let id = self.sweep.views.iter().find(|v| v.0 == run).map(|v| v.1);
                    if let Some(view) = id.and_then(|id| self.runs.get_mut(id)) {
                        view.apply(event);
                    }
                }
                SweepEvent::Finished { stopped } => {
                    if let Some(handle) = self.sweep.handle.take() {
                        handle.join();
                    }
                    self.sweep.current = None;
                    self.info(format!("sweep {}: {} runs", if stopped { "stopped" } else { "done" }, self.sweep.rows.len()));
                    break;
                }
                SweepEvent::Failed(reason) => {
                    self.error(format!("sweep failed: {reason}"));
                    self.sweep.error = Some(reason);
                }
                SweepEvent::Note(note) => self.info(format!("sweep: {note}")),
                SweepEvent::Preparing(_) => {}
            }
        }
        more
    }

    pub(super) fn take_task_result(&mut self, result: TaskResult) {
        match result {
            TaskResult::Info(text) => self.info(text),
            TaskResult::Error(text) => self.error(text),
            TaskResult::ArchitectureLoaded(path, arch) => {
                self.state.arch_path = path.display().to_string();
                self.builder.replace(arch);
                self.info(format!("loaded {}", path.display()));
                self.state.tab = Tab::Build;
            }
            TaskResult::RunsFound(found) => {
                let mut count = 0;
                for (folder, name) in found {
                    if !self.runs.contains_dir(&folder.dir) {
                        let id = self.runs.next_id();
                        let mut view = RunView::from_folder(id, folder, name);
                        view.visible = false;
                        self.runs.runs.push(view);
                        count += 1;
                    }
                }
                // Runs already listed (a reopened lab's) are not news.
                if count > 0 {
                    self.info(format!("{count} earlier run(s) found in {}", self.state.runs_dir));
                }
            }
            TaskResult::LessonFigures(filled) => self.lesson_figures_done(filled),
            TaskResult::LabOpened(opened) => {
                let last = opened.path.is_none();
                self.apply_lab(*opened);
                // Runs made since the lab was left (on the command line, say).
                if last && self.options.scan_runs {
                    self.scan_runs();
                }
            }
            TaskResult::RunLoaded(folder, name) => {
                if self.runs.contains_dir(&folder.dir) {
                    self.info(format!("{} is already in the run list", folder.dir.display()));
                } else {
                    let id = self.runs.next_id();
                    let view = RunView::from_folder(id, folder, name);
                    self.info(format!("loaded run {}", view.name));
                    self.runs.add(view);
                }
            }
            TaskResult::ClassifyFailed(reason) => {
                // The previous image's result does not stay beside the error.
                self.classify.busy = false;
                self.classify.result = None;
                self.classify.texture = None;
                self.classify.error = Some(reason.clone());
                self.error(format!("classify: {reason}"));
            }
            TaskResult::Classified { run_dir, image, input, predictions } => {
                self.classify.busy = false;
                self.classify.error = None;
                if self.message.as_ref().is_some_and(|m| m.error && m.text.starts_with("classify")) {
                    self.message = None;
                }
                self.classify.texture = None;
                self.classify.result = Some(ClassifyResult { run_dir, image, input, predictions });
            }
            TaskResult::Picked(pick, path, open_for) => {
                let Some(path) = path else {
                    // Cancelled, or no dialog could be shown at all (no
                    // file-dialog service on this desktop): then ask for a path.
                    if open_for < super::tasks::NO_DIALOG_WITHIN {
                        self.path_prompt = Some((pick, String::new()));
                    }
                    return;
                };
                self.picked(pick, path);
            }
            TaskResult::SweepCollected(dir, rows) => {
                let Some(followed) = self.sweep.followed.as_mut().filter(|f| f.dir == dir) else { return };
                followed.reading = false;
                followed.last_read = Some(Instant::now());
                match rows {
                    Ok(rows) => {
                        followed.total = rows.len();
                        self.sweep.finished_runs = rows.iter().filter(|r| r.status.is_finished()).count();
                        // Pending runs have no results to draw.
                        self.sweep.rows = rows.into_iter().filter(|r| r.status != RunStatus::Pending).collect();
                        self.sweep.error = None;
                    }
                    Err(e) => self.sweep.error = Some(e.to_string()),
                }
            }
            TaskResult::Analysis { side, label, result } => self.analysis_done(side, label, result),
            TaskResult::Compute { adapter, reason, gpu } => self.compute = Some(ComputeStatus { adapter, reason, gpu }),
        }
    }

    /// A folder chosen for the data: CIFAR-10, IDX or an image folder.
    /// Acts on a path chosen in a file dialog or typed in its place.
    pub(super) fn picked(&mut self, pick: Pick, path: PathBuf) {
        match pick {
            Pick::OpenArchitecture => self.push(AppCommand::OpenArchitecture(path)),
            Pick::SaveArchitecture => self.push(AppCommand::SaveArchitecture(path)),
            Pick::Image => {
                self.state.image_path = path.display().to_string();
                self.push(AppCommand::ClassifyImage(path));
            }
            Pick::RunFolder => self.push(AppCommand::LoadRunFolder(path)),
            Pick::DataFolder => self.set_data_folder(path),
            Pick::DataTable => self.state.train.data = DataSpec::Csv(crate::data::csv::CsvSpec { file: path, label: None, test: None }),
            Pick::OpenLab => self.push(AppCommand::OpenLab(path)),
            Pick::SaveLab => self.push(AppCommand::SaveLab(Some(path))),
        }
    }

    /// When no file dialog could be shown: a field to type the path in.
    pub(super) fn path_prompt_ui(&mut self, ctx: &egui::Context) {
        let Some((pick, text)) = &mut self.path_prompt else { return };
        let what = match pick {
            Pick::OpenArchitecture => "the architecture file to open",
            Pick::SaveArchitecture => "the file to save the architecture to",
            Pick::Image => "the image to classify",
            Pick::RunFolder => "the run folder to load",
            Pick::DataFolder => "the image folder to train on",
            Pick::DataTable => "the CSV file to train on",
            Pick::OpenLab => "the lab file (.depthlab) to open",
            Pick::SaveLab => "the lab file (.depthlab) to save to",
        };
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("path-prompt")).show(ctx, |ui| {
            ui.heading("Type the path");
            ui.label(format!("No file dialog could be shown here (no desktop file-dialog service). Type {what}:"));
            let label = ui.label("path");
            let field = ui.add(egui::TextEdit::singleline(text).desired_width(380.0)).labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.horizontal(|ui| {
                if ui.add_enabled(!text.trim().is_empty(), egui::Button::new("Open")).clicked() || (enter && !text.trim().is_empty()) {
                    answer = Some(Some(PathBuf::from(text.trim())));
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(None);
                }
            });
        });
        if let Some(answer) = answer {
            let pick = *pick;
            self.path_prompt = None;
            if let Some(path) = answer {
                self.picked(pick, path);
            }
        }
    }

    pub(super) fn set_data_folder(&mut self, dir: PathBuf) {
        let spec = if dir.join("data_batch_1.bin").is_file() {
            DataSpec::Cifar10 { dir }
        } else if dir.join("train-images-idx3-ubyte.gz").is_file() || dir.join("train-images-idx3-ubyte").is_file() {
            DataSpec::Mnist { dir }
        } else {
            DataSpec::Folder { dir, shape: Shape::map(3, 32, 32) }
        };
        self.state.train.data = spec;
    }

    /// Files dropped on the window: architectures, images, run folders, CSV tables.
    pub(super) fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        for path in dropped {
            let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            if ext == super::lab::EXTENSION {
                self.push(AppCommand::OpenLab(path));
            } else if path.is_dir() && path.join("arch.json").is_file() {
                self.push(AppCommand::LoadRunFolder(path));
            } else if ext == "json" {
                self.push(AppCommand::OpenArchitecture(path));
            } else if ext == "csv" {
                self.picked(Pick::DataTable, path);
            } else {
                self.state.image_path = path.display().to_string();
                self.state.tab = Tab::Classify;
                self.push(AppCommand::ClassifyImage(path));
            }
        }
    }

    pub(super) fn shortcuts(&mut self, ctx: &egui::Context) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let typing = ctx.egui_wants_keyboard_input();
        let pressed = |ctx: &egui::Context, m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(m, k)));
        if pressed(ctx, Modifiers::COMMAND | Modifiers::SHIFT, Key::Z) || pressed(ctx, Modifiers::COMMAND, Key::Y) {
            self.push(AppCommand::Redo);
        }
        if pressed(ctx, Modifiers::COMMAND, Key::Z) {
            self.push(AppCommand::Undo);
        }
        // Before Ctrl+S, which would also take Ctrl+Shift+S.
        if pressed(ctx, Modifiers::COMMAND | Modifiers::SHIFT, Key::S) {
            self.push(AppCommand::SaveLab(None));
        }
        if pressed(ctx, Modifiers::COMMAND, Key::S) {
            self.push(AppCommand::SaveArchitecture(self.state.arch_path.clone().into()));
        }
        if pressed(ctx, Modifiers::COMMAND, Key::O) {
            self.push(AppCommand::OpenArchitecture(self.state.arch_path.clone().into()));
        }
        if pressed(ctx, Modifiers::COMMAND, Key::Enter) {
            self.push(if self.active.is_some() { AppCommand::StopTraining } else { AppCommand::StartTraining });
        }
        if pressed(ctx, Modifiers::COMMAND, Key::D)
            && let Some(i) = self.builder.selected
        {
            self.push(AppCommand::DuplicateBlock(i));
        }
        for (key, tab) in [
            (Key::Num1, Tab::Build),
            (Key::Num2, Tab::Train),
            (Key::Num3, Tab::Sweep),
            (Key::Num4, Tab::Classify),
            (Key::Num5, Tab::Why),
            (Key::Num6, Tab::Lessons),
        ] {
            if pressed(ctx, Modifiers::COMMAND, key) {
                self.push(AppCommand::SetTab(tab));
            }
        }
        if pressed(ctx, Modifiers::NONE, Key::F1) {
            self.push(AppCommand::ToggleHelp);
        }
        if pressed(ctx, Modifiers::NONE, Key::F11) {
            self.push(AppCommand::SetPresent(!self.state.present));
        }

        if typing {
            return;
        }
        if pressed(ctx, Modifiers::NONE, Key::Delete)
            && let Some(i) = self.builder.selected
            && self.state.tab == Tab::Build
        {
            self.push(AppCommand::DeleteBlock(i));
        }
        if pressed(ctx, Modifiers::NONE, Key::Space) && self.state.tab == Tab::Train {
            let paused = self.active.as_ref().and_then(|a| self.runs.get(a.run)).is_some_and(|r| r.paused);
            self.push(if paused { AppCommand::ResumeTraining } else { AppCommand::PauseTraining });
        }
        if pressed(ctx, Modifiers::NONE, Key::Escape) {
            if self.help_open {
                self.help_open = false;
            } else {
                self.push(AppCommand::SelectBlock(None));
            }
        }
    }
}
