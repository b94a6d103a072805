//! The lab's window (eframe). Panels live in their own files and return
//! commands; this file owns the state, drains the worker's events within a
//! time budget each frame, and applies the commands in one place.

pub mod builder;
mod classify_panel;
pub mod command;
mod dashboard;
mod frame_stats;
mod history;
mod menu;
pub mod plots;
pub mod runs;
pub mod scenes;
pub mod state;
mod sweep_panel;
pub mod tasks;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::arch::{presets, Architecture, BlockKind, Shape};
use crate::data::DataSpec;
use crate::experiment::{spawn_sweep, SweepConfig, SweepRow};
use crate::train::events::{Command, Event};
use crate::train::runfolder::RunFolder;
use crate::train::worker::RunHandle;
use crate::train::{spawn, RunRequest, RunStatus};

use builder::{BuilderState, InputInfo};
pub use command::AppCommand;
use frame_stats::FrameStats;
use runs::{LabMeta, RunId, RunStore, RunView, LAB_FILE};
use state::{Persisted, Tab};
use tasks::{Pick, TaskResult, Tasks};

/// How long a frame may spend taking in worker events.
const EVENT_BUDGET: Duration = Duration::from_millis(4);

/// Choices made when the app starts (tests turn off what needs a desktop).
#[derive(Clone, Debug)]
pub struct AppOptions {
    /// Read `runs/` for earlier runs at start.
    pub scan_runs: bool,
    /// Offer native file dialogs (they need a desktop portal or zenity).
    pub dialogs: bool,
    /// Enumerate GPU adapters for the status bar.
    pub probe_backend: bool,
    /// Start from these settings instead of the saved ones.
    pub persisted: Option<Persisted>,
    /// A scripted scene to show (for screenshots).
    pub scene: Option<scenes::Scene>,
    /// Show frame times in the status bar (off where pictures must not vary).
    pub show_frame_time: bool,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self { scan_runs: true, dialogs: true, probe_backend: true, persisted: None, scene: None, show_frame_time: true }
    }
}

impl AppOptions {
    /// For tests: nothing read from the user's disk, no dialogs.
    pub fn headless() -> Self {
        Self { scan_runs: false, dialogs: false, probe_backend: false, persisted: Some(Persisted::default()), scene: None, show_frame_time: false }
    }
}

/// The run being trained now.
struct Active {
    run: RunId,
    handle: RunHandle,
}

/// The sweep in progress, and what it has produced.
#[derive(Default)]
pub struct SweepState {
    handle: Option<RunHandle>,
    /// The run of the sweep training now.
    current: Option<RunId>,
    pub rows: Vec<SweepRow>,
    pub progress: Option<(usize, usize, String)>,
    pub started: Option<Instant>,
    pub finished_runs: usize,
    pub error: Option<String>,
    pub out_dir: Option<PathBuf>,
}

impl SweepState {
    pub fn is_running(&self) -> bool {
        self.handle.is_some()
    }
}

/// The classify panel's state.
#[derive(Default)]
pub struct ClassifyState {
    pub run: Option<RunId>,
    pub result: Option<ClassifyResult>,
    pub error: Option<String>,
    pub busy: bool,
    pub texture: Option<egui::TextureHandle>,
}

pub struct ClassifyResult {
    pub run_dir: PathBuf,
    pub image: PathBuf,
    pub input: crate::classify::ModelInput,
    pub predictions: Vec<crate::classify::Prediction>,
}

/// The compute backend the lab will use, as the status bar shows it.
#[derive(Clone, Debug, Default)]
pub struct ComputeStatus {
    pub adapter: String,
    pub reason: String,
    pub gpu: bool,
}

/// A message in the status bar.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub at: Instant,
}

/// The lab.
pub struct DepthLabApp {
    pub state: Persisted,
    pub builder: BuilderState,
    pub runs: RunStore,
    active: Option<Active>,
    pub sweep: SweepState,
    pub classify: ClassifyState,
    tasks: Tasks,
    pub compute: Option<ComputeStatus>,
    pub message: Option<Message>,
    pub frame_stats: FrameStats,
    pub help_open: bool,
    confirm_delete: Option<RunId>,
    /// The learning-rate field of the dashboard.
    pub lr_field: f64,
    options: AppOptions,
    ctx: egui::Context,
    commands: Vec<AppCommand>,
    /// Classes of the folder dataset chosen in the form (counted when chosen).
    folder_classes: Option<(PathBuf, usize)>,
    scene: Option<scenes::SceneRunner>,
    /// The run whose name is being edited in the run list.
    pub renaming: Option<(RunId, String)>,
    pub heatmap: plots::heatmap::HeatmapCache,
}

/// Opens the lab's window (with a scripted scene for screenshots).
pub fn run_native(scene: Option<scenes::Scene>) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("depthlab")
            .with_app_id("depthlab")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "depthlab",
        options,
        Box::new(move |cc| {
            let options = match scene {
                // A scene starts from defaults, not from the user's saved lab.
                Some(scene) => AppOptions { scene: Some(scene), scan_runs: false, persisted: Some(Persisted::default()), ..AppOptions::default() },
                None => AppOptions::default(),
            };
            Ok(Box::new(DepthLabApp::new(cc, options)))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))
}

impl DepthLabApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> DepthLabApp {
        let persisted = options
            .persisted
            .clone()
            .or_else(|| cc.storage.and_then(|s| eframe::get_value::<Persisted>(s, eframe::APP_KEY)))
            .unwrap_or_default();
        DepthLabApp::with_state(&cc.egui_ctx, persisted, options)
    }

    pub fn with_state(ctx: &egui::Context, mut state: Persisted, options: AppOptions) -> DepthLabApp {
        // The built-in proportional font lacks arrows (→, ∘); the built-in
        // monospace font has them, so it backs the proportional one up.
        let mut fonts = egui::FontDefinitions::default();
        if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
            family.insert(1.min(family.len()), "Hack".to_owned());
        }
        ctx.set_fonts(fonts);
        ctx.set_theme(if state.dark { egui::Theme::Dark } else { egui::Theme::Light });
        let input = state.train.data.expected_shape();
        let arch = Architecture::from_json(&state.arch_json)
            .ok()
            .filter(|a| !a.blocks.is_empty())
            .or_else(|| presets::build("resnet-20", input).ok())
            .unwrap_or_else(|| Architecture { name: "network".into(), description: String::new(), stochastic_depth: None, blocks: Vec::new() });
        state.arch_json.clear();
        let builder = BuilderState::new(arch, input, 10);
        let wake_ctx = ctx.clone();
        let tasks = Tasks::new(Arc::new(move || wake_ctx.request_repaint()));
        let lr_field = state.train.lr;
        let mut app = DepthLabApp {
            state,
            builder,
            runs: RunStore::default(),
            active: None,
            sweep: SweepState::default(),
            classify: ClassifyState::default(),
            tasks,
            compute: None,
            message: None,
            frame_stats: FrameStats::from_env(),
            help_open: false,
            confirm_delete: None,
            lr_field,
            options: options.clone(),
            ctx: ctx.clone(),
            commands: Vec::new(),
            folder_classes: None,
            scene: options.scene.clone().map(scenes::SceneRunner::new),
            renaming: None,
            heatmap: Default::default(),
        };
        if options.probe_backend {
            let choice = app.state.train.backend;
            app.tasks.spawn("backend", move || {
                let c = crate::backend::select(choice);
                TaskResult::Compute { adapter: c.adapter, reason: c.reason, gpu: c.backend == crate::backend::Backend::Wgpu }
            });
        }
        if options.scan_runs {
            app.scan_runs();
        }
        app
    }

    /// Wakes the UI from another thread.
    fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        let ctx = self.ctx.clone();
        Arc::new(move || ctx.request_repaint())
    }

    pub fn push(&mut self, command: AppCommand) {
        self.commands.push(command);
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message { text: text.into(), error: false, at: Instant::now() });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some(Message { text: text.into(), error: true, at: Instant::now() });
    }

    /// Whether a training run (alone or in a sweep) is in progress.
    pub fn is_training(&self) -> bool {
        self.active.is_some() || self.sweep.is_running()
    }

    /// Whether background work is still going (tests wait on this).
    pub fn is_busy(&self) -> bool {
        self.is_training() || self.tasks.busy() || self.classify.busy
    }

    /// The input shape and class count the builder checks against.
    pub fn input_info(&self) -> InputInfo {
        let data = &self.state.train.data;
        let classes = match data {
            DataSpec::Folder { dir, .. } => self.folder_classes.as_ref().filter(|(d, _)| d == dir).map_or(2, |(_, n)| *n),
            other => other.expected_classes().unwrap_or(10),
        };
        InputInfo { shape: data.expected_shape(), classes, data_label: data.label() }
    }

    fn scan_runs(&mut self) {
        let dir = PathBuf::from(&self.state.runs_dir);
        self.tasks.spawn("scan-runs", move || {
            let mut found = Vec::new();
            let Ok(entries) = std::fs::read_dir(&dir) else { return TaskResult::RunsFound(found) };
            let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("arch.json").is_file()).collect();
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
    fn drain(&mut self) {
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
                    let failed = view.status == RunStatus::Failed;
                    let reason = view.summary.as_ref().and_then(|s| s.reason.clone());
                    if failed {
                        self.error(format!("{text}: {}", reason.unwrap_or_default()));
                    } else {
                        self.info(text);
                    }
                }
            }
        }
        more |= self.drain_sweep(deadline);
        for result in self.tasks.drain() {
            self.take_task_result(result);
        }
        if more {
            self.ctx.request_repaint();
        }
    }

    fn drain_sweep(&mut self, deadline: Instant) -> bool {
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
                Event::SweepRun { index, total, label } => {
                    self.sweep.progress = Some((index, total, label.clone()));
                    let id = self.runs.next_id();
                    let (family, size) = presets::parse_name(label.split(' ').next().unwrap_or_default()).unwrap_or((presets::Family::Resnet, 8));
                    let arch = family.build(size, self.state.train.data.expected_shape()).unwrap_or_else(|_| self.builder.arch.clone());
                    let view = RunView::new(id, format!("sweep {label}"), arch, self.sweep_train_config(), None);
                    self.runs.runs.push(view);
                    self.sweep.current = Some(id);
                }
                Event::SweepRow(row) => {
                    self.sweep.finished_runs += 1;
                    self.sweep.rows.push(row);
                }
                Event::SweepFinished { stopped } => {
                    if let Some(handle) = self.sweep.handle.take() {
                        handle.join();
                    }
                    self.sweep.current = None;
                    self.info(format!("sweep {}: {} runs", if stopped { "stopped" } else { "done" }, self.sweep.rows.len()));
                    break;
                }
                Event::Finished(summary) if self.sweep.current.is_none() => {
                    self.sweep.error = summary.reason.clone();
                    self.error(format!("sweep failed: {}", summary.reason.unwrap_or_default()));
                }
                other => {
                    if let Some(view) = self.sweep.current.and_then(|id| self.runs.get_mut(id)) {
                        view.apply(other);
                    }
                }
            }
        }
        more
    }

    fn take_task_result(&mut self, result: TaskResult) {
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
                let count = found.len();
                for (folder, name) in found {
                    if !self.runs.contains_dir(&folder.dir) {
                        let id = self.runs.next_id();
                        let mut view = RunView::from_folder(id, folder, name);
                        view.visible = false;
                        self.runs.runs.push(view);
                    }
                }
                if count > 0 {
                    self.info(format!("{count} earlier run(s) found in {}", self.state.runs_dir));
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
            TaskResult::Classified { run_dir, image, input, predictions } => {
                self.classify.busy = false;
                self.classify.error = None;
                self.classify.texture = None;
                self.classify.result = Some(ClassifyResult { run_dir, image, input, predictions });
            }
            TaskResult::Picked(pick, path) => {
                let Some(path) = path else { return };
                match pick {
                    Pick::OpenArchitecture => self.push(AppCommand::OpenArchitecture(path)),
                    Pick::SaveArchitecture => self.push(AppCommand::SaveArchitecture(path)),
                    Pick::Image => {
                        self.state.image_path = path.display().to_string();
                        self.push(AppCommand::ClassifyImage(path));
                    }
                    Pick::RunFolder => self.push(AppCommand::LoadRunFolder(path)),
                    Pick::DataFolder => self.set_data_folder(path),
                }
            }
            TaskResult::Compute { adapter, reason, gpu } => self.compute = Some(ComputeStatus { adapter, reason, gpu }),
        }
    }

    /// A folder chosen for the data: CIFAR-10, IDX or an image folder.
    fn set_data_folder(&mut self, dir: PathBuf) {
        let spec = if dir.join("data_batch_1.bin").is_file() {
            DataSpec::Cifar10 { dir }
        } else if dir.join("train-images-idx3-ubyte.gz").is_file() || dir.join("train-images-idx3-ubyte").is_file() {
            DataSpec::Mnist { dir }
        } else {
            DataSpec::Folder { dir, shape: Shape::map(3, 32, 32) }
        };
        self.state.train.data = spec;
    }

    /// Files dropped on the window: architectures, images, run folders.
    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        for path in dropped {
            let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            if path.is_dir() && path.join("arch.json").is_file() {
                self.push(AppCommand::LoadRunFolder(path));
            } else if ext == "json" {
                self.push(AppCommand::OpenArchitecture(path));
            } else {
                self.state.image_path = path.display().to_string();
                self.state.tab = Tab::Classify;
                self.push(AppCommand::ClassifyImage(path));
            }
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        use egui::{Key, KeyboardShortcut, Modifiers};
        let typing = ctx.egui_wants_keyboard_input();
        let pressed = |ctx: &egui::Context, m: Modifiers, k: Key| ctx.input_mut(|i| i.consume_shortcut(&KeyboardShortcut::new(m, k)));
        if pressed(ctx, Modifiers::COMMAND | Modifiers::SHIFT, Key::Z) || pressed(ctx, Modifiers::COMMAND, Key::Y) {
            self.push(AppCommand::Redo);
        }
        if pressed(ctx, Modifiers::COMMAND, Key::Z) {
            self.push(AppCommand::Undo);
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
        for (key, tab) in [(Key::Num1, Tab::Build), (Key::Num2, Tab::Train), (Key::Num3, Tab::Sweep), (Key::Num4, Tab::Classify)] {
            if pressed(ctx, Modifiers::COMMAND, key) {
                self.push(AppCommand::SetTab(tab));
            }
        }
        if pressed(ctx, Modifiers::NONE, Key::F1) {
            self.push(AppCommand::ToggleHelp);
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

    fn train_config(&self) -> crate::train::TrainConfig {
        crate::train::TrainConfig { lr: self.lr_field, ..self.state.train.clone() }
    }

    fn sweep_train_config(&self) -> crate::train::TrainConfig {
        let s = &self.state.sweep;
        crate::train::TrainConfig { epochs: s.epochs.max(1), max_steps: s.max_steps, ..self.state.train.clone() }
    }

    fn run_dir(&self, arch_name: &str) -> PathBuf {
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

    fn start_training(&mut self, arch: Architecture, init_weights: Option<PathBuf>, name_suffix: &str) {
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
                self.active = Some(Active { run: id, handle });
                self.state.tab = Tab::Train;
            }
            Err(e) => self.error(format!("cannot start the training thread: {e}")),
        }
    }

    fn send(&mut self, command: Command) {
        if let Some(active) = &self.active {
            active.handle.send(command);
        } else if let Some(handle) = &self.sweep.handle {
            handle.send(command);
        }
    }

    /// Applies the frame's commands.
    fn apply_commands(&mut self) {
        let commands = std::mem::take(&mut self.commands);
        if !commands.is_empty() {
            // Show the result of the commands on the next frame.
            self.ctx.request_repaint();
        }
        for command in commands {
            self.apply(command);
        }
    }

    fn apply(&mut self, command: AppCommand) {
        match command {
            AppCommand::SetTab(tab) => self.state.tab = tab,
            AppCommand::ToggleTheme => {
                self.state.dark = !self.state.dark;
                self.ctx.set_theme(if self.state.dark { egui::Theme::Dark } else { egui::Theme::Light });
            }
            AppCommand::ToggleHelp => self.help_open = !self.help_open,
            AppCommand::Message(text) => self.info(text),
            AppCommand::InsertBlock { index, kind } => {
                let index = if index == usize::MAX { append_index(&self.builder.arch) } else { index };
                let at = self.builder.arch.insert_block(index, kind);
                self.builder.selected = Some(at);
                self.builder.expanded.clear();
            }
            AppCommand::MoveBlock { from, to } => {
                if let Some(at) = self.builder.arch.move_block(from, to) {
                    self.builder.selected = Some(at);
                    self.builder.expanded.clear();
                }
            }
            AppCommand::DeleteBlock(i) => {
                if self.builder.arch.delete_block(i).is_some() {
                    self.builder.selected = None;
                    self.builder.expanded.clear();
                }
            }
            AppCommand::DuplicateBlock(i) => {
                if let Some(at) = self.builder.arch.duplicate_block(i) {
                    self.builder.selected = Some(at);
                    self.builder.expanded.clear();
                }
            }
            AppCommand::SelectBlock(i) => self.builder.selected = i,
            AppCommand::ToggleExpanded(i) => {
                if !self.builder.expanded.remove(&i) {
                    self.builder.expanded.insert(i);
                }
            }
            AppCommand::LoadPreset(name) => match presets::build(&name, self.input_info().shape) {
                Ok(arch) => {
                    self.builder.replace(arch);
                    self.info(format!("loaded preset {name}"));
                }
                Err(e) => self.error(e),
            },
            AppCommand::NewArchitecture => {
                self.builder.replace(Architecture {
                    name: "my-network".into(),
                    description: String::new(),
                    stochastic_depth: None,
                    blocks: vec![crate::arch::BlockSpec::new(BlockKind::Classifier)],
                });
            }
            AppCommand::Undo => self.builder.undo(),
            AppCommand::Redo => self.builder.redo(),
            AppCommand::SaveArchitecture(path) => {
                let json = self.builder.arch.to_json();
                self.state.arch_path = path.display().to_string();
                self.tasks.spawn("save-architecture", move || {
                    match crate::util::fsio::write_atomic(&path, json.as_bytes()) {
                        Ok(()) => TaskResult::Info(format!("saved {}", path.display())),
                        Err(e) => TaskResult::Error(format!("cannot save {}: {e}", path.display())),
                    }
                });
            }
            AppCommand::OpenArchitecture(path) => {
                self.tasks.spawn("open-architecture", move || match Architecture::load(&path) {
                    Ok(arch) => TaskResult::ArchitectureLoaded(path, arch),
                    Err(e) => TaskResult::Error(format!("{}: {e}", path.display())),
                });
            }
            AppCommand::PickFile(pick) => self.pick_file(pick),
            AppCommand::StartTraining => {
                let arch = self.builder.arch.clone();
                self.start_training(arch, None, "");
            }
            AppCommand::ContinueRun(id) => {
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
            AppCommand::PauseTraining => self.send(Command::Pause),
            AppCommand::ResumeTraining => self.send(Command::Resume),
            AppCommand::StopTraining => {
                self.send(Command::Stop);
            }
            AppCommand::SetLearningRate(lr) => {
                self.lr_field = lr;
                self.send(Command::SetLr(lr));
                if self.is_training() {
                    self.info(format!("learning rate set to {lr}"));
                }
            }
            AppCommand::SelectRun(id) => self.runs.selected = Some(id),
            AppCommand::SetRunVisible(id, visible) => {
                if let Some(run) = self.runs.get_mut(id) {
                    run.visible = visible;
                }
            }
            AppCommand::RenameRun(id, name) => {
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
            AppCommand::AskDeleteRun(id) => self.confirm_delete = Some(id),
            AppCommand::DeleteRun(id) => {
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
            AppCommand::LoadRunFolder(path) => {
                self.tasks.spawn("load-run", move || match RunFolder::open(&path) {
                    Ok(folder) => {
                        let name = read_lab_name(&path);
                        TaskResult::RunLoaded(folder, name)
                    }
                    Err(e) => TaskResult::Error(e.to_string()),
                });
            }
            AppCommand::EditRunArchitecture(id) => {
                if let Some(run) = self.runs.get(id) {
                    let arch = run.arch.clone();
                    self.builder.replace(arch);
                    self.state.tab = Tab::Build;
                }
            }
            AppCommand::StartSweep => self.start_sweep(),
            AppCommand::StopSweep => {
                if let Some(handle) = &self.sweep.handle {
                    handle.send(Command::Stop);
                }
            }
            AppCommand::ClassifyImage(path) => self.classify_image(path),
            AppCommand::ExportCsv { name, csv } => {
                let path = self.export_path(&name, "csv");
                self.tasks.spawn("export-csv", move || {
                    let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| crate::util::fsio::write_atomic(&path, csv.as_bytes()));
                    match written {
                        Ok(()) => TaskResult::Info(format!("exported {}", path.display())),
                        Err(e) => TaskResult::Error(format!("cannot export {}: {e}", path.display())),
                    }
                });
            }
            AppCommand::ExportPng { name, rect } => {
                let path = self.export_path(&name, "png");
                let ctx = self.ctx.clone();
                let pixels_per_point = ctx.pixels_per_point();
                let (tx, wake) = (self.tasks.sender(), self.waker());
                ctx.request_screenshot(move |image| {
                    let region = image.region(&rect, Some(pixels_per_point));
                    let bytes: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
                    let saved = path
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .map_err(|e| e.to_string())
                        .and_then(|_| image::save_buffer(&path, &bytes, region.width() as u32, region.height() as u32, image::ColorType::Rgba8).map_err(|e| e.to_string()));
                    let result = match saved {
                        Ok(()) => TaskResult::Info(format!("exported {}", path.display())),
                        Err(e) => TaskResult::Error(format!("cannot export {}: {e}", path.display())),
                    };
                    if tx.send(result).is_ok() {
                        wake();
                    }
                });
                self.ctx.request_repaint();
            }
            AppCommand::SelectClassifierRun(id) => {
                self.classify.run = Some(id);
                self.classify.result = None;
                if !self.state.image_path.is_empty() {
                    let path = PathBuf::from(&self.state.image_path);
                    self.classify_image(path);
                }
            }
        }
    }

    /// `exports/<name>-<time>.<ext>` beside the runs.
    fn export_path(&self, name: &str, ext: &str) -> PathBuf {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        PathBuf::from(&self.state.runs_dir).join("exports").join(format!("{name}-{}.{ext}", crate::util::timestamp(secs)))
    }

    fn pick_file(&mut self, pick: Pick) {
        if !self.options.dialogs {
            return;
        }
        self.tasks.spawn("file-dialog", move || {
            let dialog = rfd::FileDialog::new();
            let path = match pick {
                Pick::OpenArchitecture => dialog.add_filter("architecture", &["json"]).pick_file(),
                Pick::SaveArchitecture => dialog.add_filter("architecture", &["json"]).set_file_name("architecture.json").save_file(),
                Pick::Image => dialog.add_filter("image", &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]).pick_file(),
                Pick::RunFolder | Pick::DataFolder => dialog.pick_folder(),
            };
            TaskResult::Picked(pick, path)
        });
    }

    fn start_sweep(&mut self) {
        if self.is_training() {
            self.error("a run is already training: stop it first");
            return;
        }
        let s = self.state.sweep.clone();
        let depths: Result<Vec<usize>, _> = s.depths.split(',').filter(|d| !d.trim().is_empty()).map(|d| d.trim().parse::<usize>()).collect();
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
        let config = SweepConfig { families: s.families.clone(), depths, seeds: s.seeds.max(1), train: self.sweep_train_config(), out: out.clone() };
        match spawn_sweep(config, None, Some(self.waker())) {
            Ok(handle) => {
                self.sweep = SweepState { handle: Some(handle), started: Some(Instant::now()), out_dir: Some(out), ..SweepState::default() };
            }
            Err(e) => self.error(format!("cannot start the sweep: {e}")),
        }
    }

    fn classify_image(&mut self, image: PathBuf) {
        let run = self.classify.run.and_then(|id| self.runs.get(id)).or_else(|| self.runs.runs.iter().rev().find(|r| r.dir.as_ref().is_some_and(|d| d.join(crate::train::runfolder::MODEL_FILE).is_file())));
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
                Err(e) => return TaskResult::Error(format!("classify: {e}")),
            };
            match classifier.classify_file(&image) {
                Ok((input, predictions)) => TaskResult::Classified { run_dir: dir, image, input, predictions },
                Err(e) => TaskResult::Error(format!("classify: {e}")),
            }
        });
    }

    fn delete_confirmation_ui(&mut self, ctx: &egui::Context) {
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

/// Where a block clicked in the palette goes: before a final classifier.
fn append_index(arch: &Architecture) -> usize {
    match arch.blocks.last() {
        Some(b) if b.kind == BlockKind::Classifier => arch.blocks.len() - 1,
        _ => arch.blocks.len(),
    }
}

fn read_lab_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(LAB_FILE)).ok()?;
    serde_json::from_str::<LabMeta>(&text).ok().map(|m| m.name)
}

impl eframe::App for DepthLabApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain();
        self.take_dropped_files(ctx);
        self.shortcuts(ctx);
        if let Some(mut scene) = self.scene.take() {
            scene.step(self, ctx);
            self.scene = Some(scene);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let input = self.input_info();
        self.builder.refresh(input.shape, input.classes);
        menu::menu_bar_ui(ui, self);
        menu::status_bar_ui(ui, self);
        let mut commands = Vec::new();
        match self.state.tab {
            Tab::Build => builder::builder_ui(ui, &mut self.builder, &input, &mut self.state.arch_path, self.options.dialogs, &mut commands),
            Tab::Train => dashboard::train_tab_ui(ui, self, &mut commands),
            Tab::Sweep => sweep_panel::sweep_tab_ui(ui, self, &mut commands),
            Tab::Classify => classify_panel::classify_tab_ui(ui, self, &mut commands),
        }
        self.commands.extend(commands);
        let ctx = ui.ctx().clone();
        menu::help_overlay_ui(&ctx, &mut self.help_open);
        self.delete_confirmation_ui(&ctx);
        self.apply_commands();
        let editing = ctx.input(|i| i.pointer.any_down()) || ctx.egui_wants_keyboard_input();
        self.builder.commit(editing);
        if self.message.as_ref().is_some_and(|m| m.at.elapsed() < Duration::from_secs(8)) {
            ctx.request_repaint_after(Duration::from_secs(1));
        }
        self.frame_stats.record(started.elapsed(), self.is_training());
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        // A scripted scene is not disturbed by wherever the pointer happens to be.
        if self.scene.is_some() {
            raw_input.events.retain(|e| !matches!(e, egui::Event::PointerMoved(_) | egui::Event::PointerButton { .. } | egui::Event::MouseMoved(_)));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.state.arch_json = self.builder.arch.to_json();
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
        self.state.arch_json.clear();
    }

    fn on_exit(&mut self) {
        // Stop training cleanly: the worker writes its summary and weights.
        if let Some(active) = self.active.take() {
            active.handle.send(Command::Stop);
            active.handle.join();
        }
        if let Some(handle) = self.sweep.handle.take() {
            handle.send(Command::Stop);
            handle.join();
        }
        self.frame_stats.write_log();
    }
}

#[cfg(test)]
mod tests;
