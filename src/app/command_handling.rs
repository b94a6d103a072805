//! Applying the frame's commands: the one place where panels' requests
//! change the lab's state, start and stop workers, and touch files (on
//! background threads).

use std::path::PathBuf;
use std::time::Instant;

use super::runs::{LAB_FILE, LabMeta, RunId, RunView};
use super::state::Tab;
use super::tasks::{Pick, TaskResult};
use super::{Active, AppCommand, DepthLabApp, SweepState, append_index, read_lab_name};
use crate::arch::{Architecture, BlockKind, presets};
use crate::experiment::{SweepConfig, spawn_sweep};
use crate::train::events::Command;
use crate::train::runfolder::RunFolder;
use crate::train::{RunRequest, spawn};

impl DepthLabApp {
    pub(super) fn train_config(&self) -> crate::train::TrainConfig {
        crate::train::TrainConfig { lr: self.lr_field, ..self.state.train.clone() }
    }

    /// The settings of every run of the sweep: the Train tab's data,
    /// optimiser and rate, with the sweep's own budget — its epochs, or
    /// exactly its steps (however many epochs they take: a budget in steps
    /// is not cut at an epoch count) — and its own per-layer settings.
    pub(super) fn sweep_train_config(&self) -> crate::train::TrainConfig {
        let s = &self.state.sweep;
        let epochs = if s.max_steps.is_some() { 0 } else { s.epochs.max(1) };
        crate::train::TrainConfig { epochs, max_steps: s.max_steps, overrides: s.overrides, ..self.train_config() }
    }

    pub(super) fn run_dir(&self, arch_name: &str) -> PathBuf {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let clean: String = arch_name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let base = PathBuf::from(&self.state.runs_dir).join(format!("{clean}-{}", crate::util::timestamp(secs)));
        let mut dir = base.clone();
        let mut n = 2;
        while dir.exists() || self.runs.contains_dir(&dir) {
            dir = PathBuf::from(format!("{}-{n}", base.display()));
            n += 1;
        }
        dir
    }

    pub(super) fn start_training(&mut self, arch: Architecture, init_weights: Option<PathBuf>, name_suffix: &str) {
        if self.is_training() {
            self.error("a run is already training: stop it first");
            return;
        }
        let input = self.input_info();
        let analysis = arch.analyse(input.shape, input.classes);
        if !analysis.is_valid() {
            let first = analysis.errors.first().map(|e| e.to_string()).unwrap_or_default();
            self.error(format!("cannot train an invalid network: {first}"));
            self.state.tab = Tab::Build;
            return;
        }
        let config = self.train_config();
        if let Err(e) = config.check() {
            self.error(e);
            return;
        }
        let dir = self.run_dir(&arch.name);
        let id = self.runs.next_id();
        let name = format!("{}{name_suffix}", arch.name);
        let view = RunView::new(id, name, arch.clone(), config.clone(), Some(dir.clone()));
        let request = RunRequest { arch, config, data: None, out: Some(dir), init_weights };
        match spawn(request, Some(self.waker())) {
            Ok(handle) => {
                self.runs.add(view);
                self.active = Some(Active { run: id, handle, stopping: false });
                self.state.tab = Tab::Train;
            }
            Err(e) => self.error(format!("cannot start the training thread: {e}")),
        }
    }

    pub(super) fn send(&mut self, command: Command) {
        if let Some(active) = &self.active {
            active.handle.send(command);
        } else if let Some(handle) = &self.sweep.handle {
            handle.send(command);
        }
    }

    /// Applies the frame's commands.
    pub(super) fn apply_commands(&mut self) {
        let commands = std::mem::take(&mut self.commands);
        if !commands.is_empty() {
            // Show the result of the commands on the next frame.
            self.ctx.request_repaint();
        }
        for command in commands {
            self.apply(command);
        }
    }

    /// Applies one command: each arm is one line, the work of those that
    /// take more is in the helpers below, by family (the builder, its
    /// files, training, the run list, exports, classification).
    pub(super) fn apply(&mut self, command: AppCommand) {
        match command {
            AppCommand::SetTab(tab) => self.state.tab = tab,
            AppCommand::ToggleTheme => self.toggle_theme(),
            AppCommand::ToggleHelp => self.help_open = !self.help_open,
            AppCommand::Message(text) => self.info(text),
            AppCommand::SetPresent(on) => self.set_present(on),
            AppCommand::SetPresentZoom(zoom) => self.set_present_zoom(zoom),
            AppCommand::StartLesson(name) => self.start_lesson(&name),
            AppCommand::LessonStep(i) => {
                if let Some(lesson) = &mut self.lesson {
                    lesson.step = i.min(lesson.lesson.steps.len().saturating_sub(1));
                }
            }
            AppCommand::RunLessonStep(i) => self.run_lesson_step(i),
            AppCommand::CloseLesson => self.lesson = None,
            AppCommand::NewLab => self.new_lab(),
            AppCommand::OpenLab(path) => self.open_lab(path),
            AppCommand::SaveLab(path) => self.save_lab_to(path),
            AppCommand::InsertBlock { index, kind } => self.insert_block(index, kind),
            AppCommand::MoveBlock { from, to } => self.move_block(from, to),
            AppCommand::DeleteBlock(i) => self.delete_block(i),
            AppCommand::DuplicateBlock(i) => self.duplicate_block(i),
            AppCommand::SelectBlock(i) => self.builder.selected = i,
            AppCommand::ToggleExpanded(i) => self.toggle_expanded(i),
            AppCommand::LoadPreset(name) => self.load_preset(name),
            AppCommand::NewArchitecture => self.new_architecture(),
            AppCommand::Undo => self.builder.undo(),
            AppCommand::Redo => self.builder.redo(),
            AppCommand::SaveArchitecture(path) => self.save_architecture(path),
            AppCommand::OpenArchitecture(path) => self.open_architecture(path),
            AppCommand::PickFile(pick) => self.pick_file(pick),
            AppCommand::StartTraining => {
                let arch = self.builder.arch.clone();
                self.start_training(arch, None, "");
            }
            AppCommand::ContinueRun(id) => self.continue_run(id),
            AppCommand::PauseTraining => self.send(Command::Pause),
            AppCommand::ResumeTraining => self.send(Command::Resume),
            AppCommand::StopTraining => self.stop_training(),
            AppCommand::SetLearningRate(lr) => self.set_learning_rate(lr),
            AppCommand::SelectRun(id) => self.runs.selected = Some(id),
            AppCommand::SetRunVisible(id, visible) => self.set_run_visible(id, visible),
            AppCommand::ShowRuns(which) => self.runs.set_visible(which),
            AppCommand::StartAnalysis => self.start_analysis(),
            AppCommand::CancelAnalysis => self.cancel_analysis(),
            AppCommand::ExportRunToPytorch(id) => self.export_run(id),
            AppCommand::ResetPlotViews => self.plot_view.reset = true,
            AppCommand::ExportFigure { name, figure } => self.export_figure(&name, figure),
            AppCommand::RenameRun(id, name) => self.rename_run(id, name),
            AppCommand::AskDeleteRun(id) => self.confirm_delete = Some(id),
            AppCommand::DeleteRun(id) => self.delete_run(id),
            AppCommand::LoadRunFolder(path) => self.load_run_folder(path),
            AppCommand::EditRunArchitecture(id) => self.edit_run_architecture(id),
            AppCommand::StartSweep => self.start_sweep(),
            AppCommand::FollowSweep(dir) => self.follow_sweep(dir),
            AppCommand::StopSweep => self.stop_sweep(),
            AppCommand::ClassifyImage(path) => self.classify_image(path),
            AppCommand::ExportCsv { name, csv } => self.export_csv(&name, csv),
            AppCommand::ExportPng { name, rect } => self.export_png(&name, rect),
            AppCommand::SelectClassifierRun(id) => self.select_classifier_run(id),
        }
    }

    fn toggle_theme(&mut self) {
        self.state.dark = !self.state.dark;
        self.ctx.set_theme(if self.state.dark { egui::Theme::Dark } else { egui::Theme::Light });
    }

    // The builder: every edit selects the block it leaves in place and
    // folds the repeated entries again.

    /// Inserts a block at `index` (`usize::MAX`: before the classifier).
    fn insert_block(&mut self, index: usize, kind: BlockKind) {
        let index = if index == usize::MAX { append_index(&self.builder.arch) } else { index };
        let at = self.builder.arch.insert_block(index, kind);
        self.builder.selected = Some(at);
        self.builder.expanded.clear();
    }

    fn move_block(&mut self, from: usize, to: usize) {
        if let Some(at) = self.builder.arch.move_block(from, to) {
            self.builder.selected = Some(at);
            self.builder.expanded.clear();
        }
    }

    fn delete_block(&mut self, i: usize) {
        if self.builder.arch.delete_block(i).is_some() {
            self.builder.selected = None;
            self.builder.expanded.clear();
        }
    }

    fn duplicate_block(&mut self, i: usize) {
        if let Some(at) = self.builder.arch.duplicate_block(i) {
            self.builder.selected = Some(at);
            self.builder.expanded.clear();
        }
    }

    /// Expands a repeated entry into its copies, or folds it again.
    fn toggle_expanded(&mut self, i: usize) {
        if !self.builder.expanded.remove(&i) {
            self.builder.expanded.insert(i);
        }
    }

    fn load_preset(&mut self, name: String) {
        match presets::build(&name, self.input_info().shape) {
            Ok(arch) => {
                self.builder.replace(arch);
                self.info(format!("loaded preset {name}"));
            }
            Err(e) => self.error(e),
        }
    }

    /// An empty network: only the classifier.
    fn new_architecture(&mut self) {
        self.builder.replace(Architecture {
            name: "my-network".into(),
            description: String::new(),
            stochastic_depth: None,
            blocks: vec![crate::arch::BlockSpec::new(BlockKind::Classifier)],
        });
    }

    // The builder's files, written and read on background threads.

    fn save_architecture(&mut self, path: PathBuf) {
        let json = self.builder.arch.to_json();
        self.state.arch_path = path.display().to_string();
        self.tasks.spawn("save-architecture", move || match crate::util::fsio::write_atomic(&path, json.as_bytes()) {
            Ok(()) => TaskResult::Info(format!("saved {}", path.display())),
            Err(e) => TaskResult::Error(format!("cannot save {}: {e}", path.display())),
        });
    }

    fn open_architecture(&mut self, path: PathBuf) {
        self.tasks.spawn("open-architecture", move || match Architecture::load(&path) {
            Ok(arch) => TaskResult::ArchitectureLoaded(path, arch),
            Err(e) => TaskResult::Error(format!("{}: {e}", path.display())),
        });
    }

    // Training.

    /// Trains a finished run's architecture again from its saved weights.
    fn continue_run(&mut self, id: RunId) {
        let Some(run) = self.runs.get(id) else { return };
        let weights = run.dir.as_ref().map(|d| d.join(crate::train::runfolder::MODEL_FILE));
        match weights {
            Some(w) if w.is_file() => {
                let arch = run.arch.clone();
                self.start_training(arch, Some(w), " (continued)");
            }
            _ => self.error("this run saved no weights to continue from"),
        }
    }

    fn stop_training(&mut self) {
        self.send(Command::Stop);
        if let Some(active) = &mut self.active {
            active.stopping = true;
        }
    }

    /// The learning rate of the next run, and of the one training now.
    fn set_learning_rate(&mut self, lr: f64) {
        self.lr_field = lr;
        self.send(Command::SetLr(lr));
        if self.is_training() {
            self.info(format!("learning rate set to {lr}"));
        }
    }

    fn stop_sweep(&mut self) {
        if let Some(handle) = &self.sweep.handle {
            handle.send(Command::Stop);
        }
    }

    // The run list.

    fn set_run_visible(&mut self, id: RunId, visible: bool) {
        if let Some(run) = self.runs.get_mut(id) {
            run.visible = visible;
        }
    }

    /// Renames a run in the list, and in its folder's lab file.
    fn rename_run(&mut self, id: RunId, name: String) {
        if let Some(run) = self.runs.get_mut(id) {
            run.name = name.clone();
            if let Some(dir) = run.dir.clone() {
                self.tasks.spawn("rename-run", move || {
                    let text = serde_json::to_string_pretty(&LabMeta { name }).unwrap_or_default();
                    match crate::util::fsio::write_atomic(&dir.join(LAB_FILE), text.as_bytes()) {
                        Ok(()) => TaskResult::Info("renamed".into()),
                        Err(e) => TaskResult::Error(format!("cannot save the name in {}: {e}", dir.display())),
                    }
                });
            }
        }
    }

    /// Removes a run from the list and deletes its folder (the user has
    /// confirmed); a run still training is refused.
    fn delete_run(&mut self, id: RunId) {
        self.confirm_delete = None;
        if self.active.as_ref().is_some_and(|a| a.run == id) || self.sweep.current == Some(id) {
            self.error("stop the run before deleting it");
            return;
        }
        if let Some(run) = self.runs.remove(id)
            && let Some(dir) = run.dir
        {
            self.tasks.spawn("delete-run", move || match std::fs::remove_dir_all(&dir) {
                Ok(()) => TaskResult::Info(format!("deleted {}", dir.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => TaskResult::Info("deleted".into()),
                Err(e) => TaskResult::Error(format!("cannot delete {}: {e}", dir.display())),
            });
        }
    }

    fn load_run_folder(&mut self, path: PathBuf) {
        self.tasks.spawn("load-run", move || match RunFolder::open(&path) {
            Ok(folder) => {
                let name = read_lab_name(&path);
                TaskResult::RunLoaded(folder, name)
            }
            Err(e) => TaskResult::Error(e.to_string()),
        });
    }

    /// Copies a run's architecture into the builder and shows it there.
    fn edit_run_architecture(&mut self, id: RunId) {
        if let Some(run) = self.runs.get(id) {
            let arch = run.arch.clone();
            self.builder.replace(arch);
            self.state.tab = Tab::Build;
        }
    }

    // Classification.

    fn select_classifier_run(&mut self, id: RunId) {
        // Choosing a run only chooses it: the image is classified
        // when asked (a path typed half-way would fail at once).
        self.classify.run = Some(id);
        self.classify.result = None;
        self.classify.texture = None;
        self.classify.error = None;
    }

    /// A file dialog, or where none can be shown, a field to type the path in.
    pub(super) fn ask_path(&mut self, pick: Pick) {
        if self.options.dialogs {
            self.pick_file(pick);
        } else {
            self.path_prompt = Some((pick, String::new()));
        }
    }

    pub(super) fn pick_file(&mut self, pick: Pick) {
        if !self.options.dialogs {
            return;
        }
        self.tasks.spawn("file-dialog", move || {
            let opened = std::time::Instant::now();
            let dialog = rfd::FileDialog::new();
            let path = match pick {
                Pick::OpenArchitecture => dialog.add_filter("architecture", &["json"]).pick_file(),
                Pick::SaveArchitecture => dialog.add_filter("architecture", &["json"]).set_file_name("architecture.json").save_file(),
                Pick::Image => dialog.add_filter("image", &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]).pick_file(),
                Pick::DataTable => dialog.add_filter("table", &["csv", "txt"]).pick_file(),
                Pick::RunFolder | Pick::DataFolder => dialog.pick_folder(),
                Pick::OpenLab => dialog.add_filter("lab", &[super::lab::EXTENSION]).pick_file(),
                Pick::SaveLab => dialog.add_filter("lab", &[super::lab::EXTENSION]).set_file_name("lesson.depthlab").save_file(),
            };
            TaskResult::Picked(pick, path, opened.elapsed())
        });
    }

    /// Follows the sweep folder `dir` (planned with `sweep --plan`, filled
    /// by other processes or machines), or stops following.
    pub(super) fn follow_sweep(&mut self, dir: Option<PathBuf>) {
        let Some(dir) = dir else {
            self.sweep.followed = None;
            return;
        };
        if self.sweep.is_running() {
            self.error("a sweep is running here: stop it first");
            return;
        }
        if !dir.join(crate::experiment::SWEEP_FILE).is_file() {
            self.error(format!("{}: not a sweep folder (no {})", dir.display(), crate::experiment::SWEEP_FILE));
            return;
        }
        self.sweep = SweepState {
            followed: Some(super::FollowedSweep { dir: dir.clone(), last_read: None, reading: false, total: 0 }),
            out_dir: Some(dir),
            ..SweepState::default()
        };
    }

    pub(super) fn start_sweep(&mut self) {
        if self.is_training() {
            self.error("a run is already training: stop it first");
            return;
        }
        let s = self.state.sweep.clone();
        let depths: Result<Vec<usize>, _> =
            s.depths.split(',').filter(|d| !d.trim().is_empty()).map(|d| d.trim().parse::<usize>()).collect();
        let depths = match depths {
            Ok(d) if !d.is_empty() => d,
            _ => {
                self.error(format!("'{}': depths are numbers like 8,20,32", s.depths));
                return;
            }
        };
        if s.families.is_empty() {
            self.error("choose at least one family");
            return;
        }
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let out = PathBuf::from(&s.out_dir).join(format!("sweep-{}", crate::util::timestamp(secs)));
        let config = SweepConfig {
            families: s.families.clone(),
            depths,
            seeds: s.seeds.max(1),
            train: self.sweep_train_config(),
            out: out.clone(),
            resume: false,
            jobs: s.jobs,
        };
        match spawn_sweep(config, None, Some(self.waker())) {
            Ok(handle) => {
                self.sweep =
                    SweepState { handle: Some(handle), started: Some(Instant::now()), out_dir: Some(out), ..SweepState::default() };
            }
            Err(e) => self.error(format!("cannot start the sweep: {e}")),
        }
    }

    pub(super) fn classify_image(&mut self, image: PathBuf) {
        let run = self.classify.run.and_then(|id| self.runs.get(id)).or_else(|| {
            self.runs.runs.iter().rev().find(|r| r.dir.as_ref().is_some_and(|d| d.join(crate::train::runfolder::MODEL_FILE).is_file()))
        });
        let Some(run) = run else {
            self.classify.error = Some("train a model first (or load a run folder): there is nothing to classify with".into());
            return;
        };
        let Some(dir) = run.dir.clone() else {
            self.classify.error = Some("this run saved no weights".into());
            return;
        };
        self.classify.run = Some(run.id);
        self.classify.busy = true;
        self.classify.error = None;
        self.tasks.spawn("classify", move || {
            let classifier = match crate::classify::Classifier::open(&dir) {
                Ok(c) => c,
                Err(e) => return TaskResult::ClassifyFailed(e.to_string()),
            };
            match classifier.classify_file(&image) {
                Ok((input, predictions)) => TaskResult::Classified { run_dir: dir, image, input, predictions },
                Err(e) => TaskResult::ClassifyFailed(e.to_string()),
            }
        });
    }

    pub(super) fn delete_confirmation_ui(&mut self, ctx: &egui::Context) {
        let Some(id) = self.confirm_delete else { return };
        let name = self.runs.get(id).map(|r| r.name.clone()).unwrap_or_default();
        let dir = self.runs.get(id).and_then(|r| r.dir.clone());
        let modal = egui::Modal::new(egui::Id::unique("confirm-delete")).show(ctx, |ui| {
            ui.heading(format!("Delete {name}?"));
            match &dir {
                Some(d) => ui.label(format!("Its folder {} and everything in it will be removed.", d.display())),
                None => ui.label("It will be removed from the list."),
            };
            ui.horizontal(|ui| {
                if ui.button("Delete").clicked() {
                    self.commands.push(AppCommand::DeleteRun(id));
                    ui.close();
                }
                if ui.button("Cancel").clicked() {
                    ui.close();
                }
            });
        });
        if modal.should_close() {
            self.confirm_delete = None;
        }
    }
}
