//! The lab's window (eframe). Panels live in their own files and return
//! commands; this file owns the state, drains the worker's events within a
//! time budget each frame, and applies the commands in one place.

pub mod builder;
mod classify_panel;
pub mod command;
mod command_handling;
mod dashboard;
mod exports;
mod frame_stats;
mod history;
pub mod lab;
mod lab_state;
mod lessons;
mod lessons_panel;
mod logic;
mod menu;
pub mod plots;
pub mod present;
mod render_budget;
mod run_labels;
mod run_list;
pub mod runs;
pub mod scenes;
pub mod state;
mod sweep_panel;
pub mod tasks;
mod train_settings;
pub mod why;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::arch::{Architecture, BlockKind, presets};
use crate::data::DataSpec;
use crate::experiment::{SweepEvent, SweepRow};
use crate::train::events::Command;
use crate::train::worker::RunHandle;

use builder::{BuilderState, InputInfo};
pub use command::AppCommand;
use frame_stats::FrameStats;
use render_budget::{RenderBudget, data_redraw};
use runs::{LAB_FILE, LabMeta, RunId, RunStore};
use state::{Persisted, Tab};
use tasks::{TaskResult, Tasks};

/// Where the window keeps its last lab (a lab file's JSON, absolute paths).
const LAST_LAB_KEY: &str = "depthlab-last-lab";

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
    /// A lab file to open (`depthlab open FILE`) instead of the last lab.
    pub lab: Option<PathBuf>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self { scan_runs: true, dialogs: true, probe_backend: true, persisted: None, scene: None, show_frame_time: true, lab: None }
    }
}

impl AppOptions {
    /// For tests: nothing read from the user's disk, no dialogs.
    pub fn headless() -> Self {
        Self {
            scan_runs: false,
            dialogs: false,
            probe_backend: false,
            persisted: Some(Persisted::default()),
            scene: None,
            show_frame_time: false,
            lab: None,
        }
    }
}

/// The run being trained now.
struct Active {
    run: RunId,
    handle: RunHandle,
    /// Stop was asked for; the run is finishing its step and saving.
    stopping: bool,
}

/// The sweep in progress, and what it has produced.
#[derive(Default)]
pub struct SweepState {
    handle: Option<RunHandle<SweepEvent>>,
    /// The run of the sweep announced last (the dashboard shows it).
    current: Option<RunId>,
    /// The view of each sweep run by its index in the plan, and the
    /// plan index of each row (rows stay in plan order when runs finish
    /// out of order).
    views: Vec<(usize, RunId, PathBuf)>,
    row_order: Vec<usize>,
    pub rows: Vec<SweepRow>,
    pub progress: Option<(usize, usize, String)>,
    pub started: Option<Instant>,
    pub finished_runs: usize,
    pub error: Option<String>,
    pub out_dir: Option<PathBuf>,
    /// A sweep folder followed live (other processes or machines fill it).
    pub followed: Option<FollowedSweep>,
}

/// A sweep folder read again every few seconds.
pub struct FollowedSweep {
    pub dir: PathBuf,
    pub last_read: Option<Instant>,
    pub reading: bool,
    pub total: usize,
}

/// How often a followed sweep folder is read again.
pub const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// What frames cost the CPU, and so how often training data may redraw.
    pub render_budget: RenderBudget,
    pub help_open: bool,
    confirm_delete: Option<RunId>,
    /// A path to type because no file dialog could be shown.
    path_prompt: Option<(tasks::Pick, String)>,
    /// The learning-rate field of the dashboard.
    pub lr_field: f64,
    /// The sweep folder field of the Sweep tab's "follow" row.
    pub follow_field: String,
    options: AppOptions,
    ctx: egui::Context,
    commands: Vec<AppCommand>,
    /// Classes of the folder dataset chosen in the form (counted when chosen).
    folder_classes: Option<(PathBuf, usize)>,
    scene: Option<scenes::SceneRunner>,
    /// The run whose name is being edited in the run list.
    pub renaming: Option<(RunId, String)>,
    pub heatmap: plots::heatmap::HeatmapCache,
    /// Zoom resets and the bounds each plot was last drawn with.
    pub plot_view: plots::PlotView,
    /// The Why tab: its analyses and their results.
    pub why: why::WhyState,
    /// The lesson being taught, if any.
    pub lesson: Option<lessons::LessonState>,
}

pub use crate::report::render::install_fonts;

/// The window could not be opened (no display, no graphics driver).
#[derive(Debug, thiserror::Error)]
#[error("cannot open the window: {0}")]
pub struct WindowError(#[source] eframe::Error);

/// Opens the lab's window (with a scripted scene for screenshots).
pub fn run_native(scene: Option<scenes::Scene>, lab: Option<PathBuf>) -> Result<(), WindowError> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("depthlab")
            .with_app_id("depthlab")
            .with_inner_size(scene.as_ref().map_or(scenes::WINDOW_SIZE, |s| s.size))
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        // A scene's window has the scene's size, whatever size the lab's
        // window was left at: it keeps eframe's state (which restores the
        // window's size) in a folder of its own.
        persist_window: scene.is_none(),
        persistence_path: scene.as_ref().map(|_| std::env::temp_dir().join(format!("depthlab-scene-state-{}", std::process::id()))),
        ..Default::default()
    };
    eframe::run_native(
        "depthlab",
        options,
        Box::new(move |cc| {
            let options = match scene {
                // A scene starts from defaults, not from the user's saved lab.
                Some(scene) => {
                    AppOptions { scene: Some(scene), scan_runs: false, persisted: Some(Persisted::default()), ..AppOptions::default() }
                }
                None => AppOptions { lab, ..AppOptions::default() },
            };
            Ok(Box::new(DepthLabApp::new(cc, options)))
        }),
    )
    .map_err(WindowError)
}

impl DepthLabApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> DepthLabApp {
        // Training in the window leaves the thread that draws it first in
        // line for a core.
        crate::util::threads::yield_to_window();
        let persisted = options
            .persisted
            .clone()
            .or_else(|| cc.storage.and_then(|s| eframe::get_value::<Persisted>(s, eframe::APP_KEY)))
            .unwrap_or_default();
        // The lab as it was left (unless a lab file or a scene was asked for).
        let last_lab = match (&options.persisted, &options.lab) {
            (None, None) => cc.storage.and_then(last_lab),
            _ => None,
        };
        let scan = options.scan_runs;
        let reopening = last_lab.is_some() || options.lab.is_some();
        let mut app = DepthLabApp::with_state(&cc.egui_ctx, persisted, AppOptions { scan_runs: scan && !reopening, ..options });
        // The runs folder is read again once the lab is on screen.
        app.options.scan_runs = scan;
        if let Some(path) = app.options.lab.clone() {
            app.open_lab(path);
        } else if let Some(lab) = last_lab {
            app.reopen_last_lab(lab);
        }
        app
    }

    pub fn with_state(ctx: &egui::Context, mut state: Persisted, options: AppOptions) -> DepthLabApp {
        install_fonts(ctx);
        ctx.set_theme(if state.dark { egui::Theme::Dark } else { egui::Theme::Light });
        let input = state.train.data.expected_shape();
        let arch = Architecture::from_json(&state.arch_json)
            .ok()
            .filter(|a| !a.blocks.is_empty())
            .or_else(|| presets::build("resnet-20", input).ok())
            .unwrap_or_else(|| Architecture {
                name: "network".into(),
                description: String::new(),
                stochastic_depth: None,
                blocks: Vec::new(),
            });
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
            render_budget: RenderBudget::default(),
            help_open: false,
            confirm_delete: None,
            path_prompt: None,
            lr_field,
            follow_field: String::new(),
            options: options.clone(),
            ctx: ctx.clone(),
            commands: Vec::new(),
            folder_classes: None,
            scene: options.scene.clone().map(scenes::SceneRunner::new),
            renaming: None,
            heatmap: Default::default(),
            plot_view: Default::default(),
            why: why::WhyState::new(),
            lesson: None,
        };
        if options.probe_backend {
            let choice = app.state.train.backend;
            app.tasks.spawn("backend", move || match crate::backend::select(choice) {
                Ok(c) => TaskResult::Compute { adapter: c.adapter, reason: c.reason, gpu: c.backend.is_gpu() },
                Err(reason) => TaskResult::Compute { adapter: "unavailable".into(), reason: reason.to_string(), gpu: false },
            });
        }
        if options.scan_runs {
            app.scan_runs();
        }
        app
    }

    /// Wakes the UI from another thread when new data arrives: no sooner
    /// than the render budget's interval after the last data redraw
    /// (`render_budget`), so that a run sending hundreds of steps a second
    /// does not make the window redraw, and take cores from training,
    /// hundreds of times. Input is answered at once all the same (egui
    /// repaints on every input event).
    fn waker(&self) -> Arc<dyn Fn() + Send + Sync> {
        let ctx = self.ctx.clone();
        let shared = self.render_budget.interval.clone();
        // When the latest data redraw happened, or is due when in the future.
        let latest = std::sync::Mutex::new(None::<Instant>);
        Arc::new(move || {
            let now = Instant::now();
            let Ok(mut latest) = latest.lock() else {
                ctx.request_repaint();
                return;
            };
            match data_redraw(*latest, now, shared.get()) {
                Some(due) => {
                    *latest = Some(due);
                    ctx.request_repaint_after(due.saturating_duration_since(now));
                }
                None => ctx.request_repaint_after(latest.map_or(Duration::ZERO, |due| due.saturating_duration_since(now))),
            }
        })
    }

    pub fn push(&mut self, command: AppCommand) {
        self.commands.push(command);
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some(Message { text: text.into(), error: false });
    }

    fn error(&mut self, text: impl std::fmt::Display) {
        self.message = Some(Message { text: text.to_string(), error: true });
    }

    /// Whether a training run (alone or in a sweep) is in progress.
    pub fn is_training(&self) -> bool {
        self.active.is_some() || self.sweep.is_running()
    }

    /// Whether background work is still going (tests wait on this).
    /// Whether Stop was asked for and the run is still finishing.
    pub fn is_stopping(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.stopping)
    }

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
}

/// Where a block clicked in the palette goes: before a final classifier.
fn append_index(arch: &Architecture) -> usize {
    match arch.blocks.last() {
        Some(b) if b.kind == BlockKind::Classifier => arch.blocks.len() - 1,
        _ => arch.blocks.len(),
    }
}

/// The lab the window was left with, from its storage (a damaged one is
/// no lab: the window opens on the defaults).
fn last_lab(storage: &dyn eframe::Storage) -> Option<lab::LabFile> {
    storage.get_string(LAST_LAB_KEY).and_then(|text| lab::LabFile::parse(&text, Path::new("the last lab")).ok())
}

impl DepthLabApp {
    /// Keeps the lab on screen in the window's storage (absolute paths),
    /// for the next start.
    fn keep_last_lab(&self, storage: &mut dyn eframe::Storage) {
        if let Ok(text) = serde_json::to_string(&self.capture_lab(None)) {
            storage.set_string(LAST_LAB_KEY, text);
        }
    }
}

fn read_lab_name(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(LAB_FILE)).ok()?;
    serde_json::from_str::<LabMeta>(&text).ok().map(|m| m.name)
}

impl eframe::App for DepthLabApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain();
        self.lesson_tick();
        self.take_dropped_files(ctx);
        self.shortcuts(ctx);
        if let Some(mut scene) = self.scene.take() {
            scene.step(self, ctx);
            self.scene = Some(scene);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let started = Instant::now();
        let started_wall = std::time::SystemTime::now();
        let input = self.input_info();
        self.builder.refresh(input.shape, input.classes);
        menu::menu_bar_ui(ui, self);
        menu::status_bar_ui(ui, self);
        let mut commands = Vec::new();
        lessons_panel::lesson_side_ui(ui, self, &mut commands);
        match self.state.tab {
            Tab::Build => {
                builder::builder_ui(ui, &mut self.builder, &input, &mut self.state.arch_path, self.options.dialogs, &mut commands)
            }
            Tab::Train => dashboard::train_tab_ui(ui, self, &mut commands),
            Tab::Sweep => sweep_panel::sweep_tab_ui(ui, self, &mut commands),
            Tab::Classify => classify_panel::classify_tab_ui(ui, self, &mut commands),
            Tab::Why => why::why_tab_ui(ui, self, &mut commands),
            Tab::Lessons => lessons_panel::lessons_tab_ui(ui, self, &mut commands),
        }
        self.commands.extend(commands);
        let ctx = ui.ctx().clone();
        menu::help_overlay_ui(&ctx, &mut self.help_open);
        self.delete_confirmation_ui(&ctx);
        self.path_prompt_ui(&ctx);
        self.apply_commands();
        let editing = ctx.input(|i| i.pointer.any_down()) || ctx.egui_wants_keyboard_input();
        self.builder.commit(editing);
        let drawing = self.render_budget.frame(frame.info().cpu_usage);
        self.frame_stats.record(started_wall, started.elapsed(), frame.info().cpu_usage, self.is_training(), drawing);
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        // A scripted scene is not disturbed by wherever the pointer happens to be.
        if let Some(scene) = &mut self.scene {
            raw_input.events.retain(|e| {
                !matches!(
                    e,
                    egui::Event::PointerMoved(_)
                        | egui::Event::PointerButton { .. }
                        | egui::Event::MouseMoved(_)
                        | egui::Event::MouseWheel { .. }
                )
            });
            let screen = raw_input.screen_rect.unwrap_or(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1440.0, 900.0)));
            raw_input.events.extend(scene.input_events(screen));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        // A scripted scene must not leave its settings (a temporary runs
        // folder) in place of the user's.
        if self.scene.is_some() {
            return;
        }
        self.state.arch_json = self.builder.arch.to_json();
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
        self.state.arch_json.clear();
        self.keep_last_lab(storage);
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
