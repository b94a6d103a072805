//! Scripted scenes of the real app, for the screenshots in the README:
//! `depthlab --scene NAME --screenshot FILE` opens the window, sets the scene
//! up as a user would (presets, edits, training, a sweep, a classification),
//! saves a screenshot and closes. `scripts/screenshots.sh` runs them all.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::command::AppCommand;
use super::state::Tab;
use super::why::AnalysisKind;
use super::{AppOptions, DepthLabApp};
use crate::arch::BlockKind;
use crate::arch::presets::Family;
use crate::data::DataSpec;

mod setup;
use setup::*;

/// The scenes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SceneKind {
    /// The builder with ResNet-20.
    Builder,
    /// A convolutional highway net, its gates in every row.
    Highway,
    /// A fractal net with its columns and joins.
    Fractal,
    /// An architecture made invalid, with its inline error.
    Invalid,
    /// The dashboard mid-training: a plain net done, its residual twin training.
    Training,
    /// A finished depth sweep.
    Sweep,
    /// The one-turn spiral with sigmoid units: plain-mlp-30 and
    /// resnet-mlp-30 training at once, two thirds of the way, their
    /// decision boundaries side by side.
    Playground,
    /// Eight runs (plain and residual twins at four depths, one diverged)
    /// and a finished sweep's runs in their group: the comparison view.
    Comparison,
    /// The comparison's runs and sweep with a teacher's touches (a run
    /// renamed, two hidden), saved as a lab file, the window's lab thrown
    /// away and the file opened again: what a lecture prepared the day
    /// before looks like in the hall.
    Reopened,
    /// The vanishing-gradients lesson taught in presentation mode at 200 %:
    /// both steps run, the card quoting the runs' figures beside the Train
    /// tab (for a 1280 × 720 projector).
    Lesson,
    /// plain-14 and resnet-14 trained briefly, then one analysis of the Why
    /// tab run on both, side by side.
    Why(super::why::AnalysisKind),
    /// A trained run classifying a sample image.
    Classify,
    /// A trained run asked to classify a file that is not there: the error
    /// shown and the window idle (for the idle-CPU figure).
    ClassifyError,
    /// ResNet-1202 with every stage expanded, scrolled up and down for a
    /// while (for frame-time figures with `DEPTHLAB_FRAME_LOG`).
    Large,
    /// ResNet-1202 training with every residual branch started at zero and
    /// a gradient probe every step: 602 layers in the gradient plots and
    /// the heatmap (and frame times while it trains, with
    /// `DEPTHLAB_FRAME_LOG`).
    Thousand,
    /// One run of `BENCH_ARCHS[i]` trained as a user would from the Train
    /// tab, for `DEPTHLAB_BENCH_STEPS` steps (200 by default), the window
    /// left open afterwards: `scripts/bench_window.py` compares its speed
    /// with the command line's and samples the UI thread's CPU time.
    Bench(usize),
}

/// The nets `--scene bench-NAME` trains.
pub const BENCH_ARCHS: [&str; 4] = ["plain-8", "resnet-20", "resnet-110", "resnet-1202"];

impl SceneKind {
    pub const ALL: [(&'static str, SceneKind); 21] = [
        ("builder", SceneKind::Builder),
        ("highway", SceneKind::Highway),
        ("fractal", SceneKind::Fractal),
        ("invalid", SceneKind::Invalid),
        ("training", SceneKind::Training),
        ("sweep", SceneKind::Sweep),
        ("playground", SceneKind::Playground),
        ("comparison", SceneKind::Comparison),
        ("reopened", SceneKind::Reopened),
        ("lesson", SceneKind::Lesson),
        ("why-lesion", SceneKind::Why(AnalysisKind::Lesion)),
        ("why-paths", SceneKind::Why(AnalysisKind::Paths)),
        ("why-landscape", SceneKind::Why(AnalysisKind::Landscape)),
        ("classify", SceneKind::Classify),
        ("classify-error", SceneKind::ClassifyError),
        ("large", SceneKind::Large),
        ("thousand", SceneKind::Thousand),
        ("bench-plain-8", SceneKind::Bench(0)),
        ("bench-resnet-20", SceneKind::Bench(1)),
        ("bench-resnet-110", SceneKind::Bench(2)),
        ("bench-resnet-1202", SceneKind::Bench(3)),
    ];
}

/// The comparison scene's runs: (preset, learning rate, without batch
/// normalisation). The last one diverges on purpose.
const COMPARISON: [(&str, f64, bool); 8] = [
    ("plain-8", 0.05, false),
    ("resnet-8", 0.05, false),
    ("plain-14", 0.05, false),
    ("resnet-14", 0.05, false),
    ("plain-20", 0.05, false),
    ("resnet-20", 0.05, false),
    ("plain-32", 0.05, false),
    ("resnet-32", 10.0, true),
];

/// Epochs of the spiral (31 steps of 32 each) in the `playground` scene:
/// long enough to time the window while both nets train.
const PLAYGROUND_EPOCHS: usize = 60;

/// Steps the `thousand` scene trains ResNet-1202 for (~4 s each on two cores).
const THOUSAND_STEPS: usize = 16;

/// A scene and where its screenshot goes.
#[derive(Clone, Debug)]
pub struct Scene {
    pub kind: SceneKind,
    pub screenshot: Option<PathBuf>,
    /// The window's size in points.
    pub size: [f32; 2],
}

/// `--scene`, `--screenshot` or `--window-size` given wrongly.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("--screenshot and --window-size need --scene")]
    NoScene,
    #[error("--window-size {0}: expected WIDTHxHEIGHT, e.g. 1024x700 (400x300 to 8192x8192)")]
    WindowSize(String),
    #[error("'{0}' is not a scene ({names})", names = SceneKind::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    Unknown(String),
}

/// The window's size unless a scene asks for another.
pub const WINDOW_SIZE: [f32; 2] = [1440.0, 900.0];

impl Scene {
    /// From `--scene NAME [--screenshot FILE] [--window-size WxH]`.
    pub fn from_options(scene: Option<&str>, screenshot: Option<PathBuf>, size: Option<&str>) -> Result<Option<Scene>, SceneError> {
        let Some(name) = scene else {
            return if screenshot.is_some() || size.is_some() { Err(SceneError::NoScene) } else { Ok(None) };
        };
        let size = match size {
            None => WINDOW_SIZE,
            Some(text) => {
                let parsed = text.split_once('x').and_then(|(w, h)| Some([w.trim().parse::<f32>().ok()?, h.trim().parse::<f32>().ok()?]));
                match parsed {
                    Some([w, h]) if (400.0..=8192.0).contains(&w) && (300.0..=8192.0).contains(&h) => [w, h],
                    _ => return Err(SceneError::WindowSize(text.to_string())),
                }
            }
        };
        let kind = SceneKind::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k).ok_or_else(|| SceneError::Unknown(name.to_string()))?;
        Ok(Some(Scene { kind, screenshot, size }))
    }
}

/// Plays a scene frame by frame.
pub struct SceneRunner {
    scene: Scene,
    phase: usize,
    frames_in_phase: u64,
    phase_started: Instant,
    saved: Arc<AtomicBool>,
    requested: bool,
    frames: u64,
    /// When a benchmark scene's run finished (the window then idles for
    /// [`BENCH_IDLE`] and closes, writing its frame log).
    finished_at: Option<Instant>,
}

/// How long a benchmark scene's window stays open, idle, after its run.
const BENCH_IDLE: Duration = Duration::from_secs(15);

impl SceneRunner {
    pub fn new(scene: Scene) -> SceneRunner {
        SceneRunner {
            scene,
            phase: 0,
            frames_in_phase: 0,
            phase_started: Instant::now(),
            saved: Arc::new(AtomicBool::new(false)),
            requested: false,
            frames: 0,
            finished_at: None,
        }
    }

    fn next(&mut self) {
        self.phase += 1;
        self.frames_in_phase = 0;
        self.phase_started = Instant::now();
    }

    /// Input the scene feeds the window (pointer and keys of the user are kept out).
    pub fn input_events(&mut self, screen: egui::Rect) -> Vec<egui::Event> {
        self.frames += 1;
        match self.scene.kind {
            SceneKind::Large if self.phase >= 1 => {
                // Over the block stack, scrolling down for 200 frames, then up.
                let down = (self.frames / 200) % 2 == 0;
                let delta = egui::vec2(0.0, if down { -60.0 } else { 60.0 });
                vec![
                    egui::Event::PointerMoved(screen.center()),
                    egui::Event::MouseWheel {
                        unit: egui::MouseWheelUnit::Point,
                        delta,
                        phase: egui::TouchPhase::Move,
                        source: egui::MouseWheelSource::Wheel,
                        modifiers: egui::Modifiers::NONE,
                    },
                ]
            }
            _ => Vec::new(),
        }
    }

    /// Advances the scene; called once per frame before the UI.
    pub fn step(&mut self, app: &mut DepthLabApp, ctx: &egui::Context) {
        self.frames_in_phase += 1;
        if !self.requested && !matches!(self.scene.kind, SceneKind::Bench(_)) {
            // Scripted until its picture is taken; then the window is left
            // to idle like any other (what the idle-CPU figure measures).
            // A benchmark scene repaints only as any window does.
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if self.phase == 0 {
            self.setup(app);
            self.next();
            return;
        }
        if !self.ready(app) || self.frames_in_phase < 15 {
            return;
        }
        if !self.requested {
            self.requested = true;
            match self.scene.screenshot.clone() {
                Some(path) => {
                    let saved = self.saved.clone();
                    let wake = ctx.clone();
                    ctx.request_screenshot(move |image| {
                        let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
                        if let Some(parent) = path.parent() {
                            let _created = std::fs::create_dir_all(parent);
                        }
                        match image::save_buffer(&path, &bytes, image.width() as u32, image.height() as u32, image::ColorType::Rgba8) {
                            Ok(()) => eprintln!("depthlab: saved {}", path.display()),
                            Err(e) => eprintln!("depthlab: cannot save {}: {e}", path.display()),
                        }
                        saved.store(true, Ordering::SeqCst);
                        wake.request_repaint();
                    });
                }
                None => {
                    self.saved.store(true, Ordering::SeqCst);
                    ctx.request_repaint();
                }
            }
            return;
        }
        let closes = self.scene.screenshot.is_some() || matches!(self.scene.kind, SceneKind::Bench(_));
        if self.saved.load(Ordering::SeqCst) && closes {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    /// Sets the scene up as a user would: the settings it needs, then the
    /// commands that open, edit or start what it shows.
    fn setup(&mut self, app: &mut DepthLabApp) {
        let runs_dir = std::env::temp_dir().join(format!("depthlab-scene-{}", std::process::id()));
        app.state.runs_dir = runs_dir.display().to_string();
        app.state.sweep.out_dir = runs_dir.join("sweeps").display().to_string();
        app.state.train.data = DataSpec::FashionMini;
        app.state.train.backend = crate::backend::BackendChoice::Cpu;
        match self.scene.kind {
            SceneKind::Builder => open_preset(app, "resnet-20", 2, true),
            SceneKind::Highway => open_preset(app, "highway-14", 1, true),
            SceneKind::Fractal => open_preset(app, "fractal-4", 2, false),
            SceneKind::Invalid => setup_invalid(app),
            SceneKind::Training => setup_training(app),
            SceneKind::Playground => setup_playground(app),
            SceneKind::Sweep => setup_sweep(app),
            SceneKind::Why(kind) => setup_why(app, kind),
            SceneKind::Comparison | SceneKind::Reopened => setup_comparison(app),
            SceneKind::Lesson => {
                app.push(AppCommand::StartLesson("vanishing-gradients".into()));
                app.push(AppCommand::SetPresentZoom(super::present::DEFAULT_ZOOM));
            }
            SceneKind::Large => setup_large(app),
            SceneKind::Bench(i) => setup_bench(app, i),
            SceneKind::Thousand => setup_thousand(app),
            SceneKind::Classify | SceneKind::ClassifyError => setup_classify(app),
        }
    }

    /// Trains the comparison's runs one after another, then a 2 x 2 sweep,
    /// and shows the Train tab.
    fn comparison_ready(&mut self, app: &mut DepthLabApp) -> bool {
        if app.is_training() {
            return false;
        }
        let index = self.phase - 1;
        if let Some(&(preset, lr, no_bn)) = COMPARISON.get(index) {
            app.lr_field = lr;
            app.state.train.overrides.norm = no_bn.then_some(crate::arch::Norm::None);
            app.push(AppCommand::LoadPreset(preset.into()));
            app.push(AppCommand::StartTraining);
            self.next();
            return false;
        }
        if index == COMPARISON.len() {
            app.lr_field = 0.05;
            app.state.train.overrides.norm = None;
            app.state.sweep.families = vec![Family::Plain, Family::Resnet];
            app.state.sweep.depths = "8,14".into();
            app.state.sweep.max_steps = Some(30);
            app.push(AppCommand::StartSweep);
            self.next();
            return false;
        }
        if index == COMPARISON.len() + 1 {
            if !app.sweep.rows.is_empty() {
                app.state.tab = Tab::Train;
                if let Some(id) = app.runs.runs.iter().find(|r| r.name == "resnet-20").map(|r| r.id) {
                    app.runs.selected = Some(id);
                }
                self.next();
            }
            return false;
        }
        self.frames_in_phase > 30
    }

    /// The comparison, then the lab saved, the window's lab replaced by a
    /// fresh one, and the file opened.
    fn reopened_ready(&mut self, app: &mut DepthLabApp) -> bool {
        let saved_at = COMPARISON.len() + 3;
        if self.phase < saved_at {
            if self.comparison_ready(app) {
                self.next();
            }
            return false;
        }
        let file = PathBuf::from(&app.state.runs_dir).join("lecture.depthlab");
        match self.phase - saved_at {
            0 => {
                for run in &mut app.runs.runs {
                    match run.name.as_str() {
                        "resnet-20" => run.name = "resnet-20 (watch this one)".into(),
                        "plain-8" | "resnet-8" => run.visible = false,
                        _ => {}
                    }
                }
                app.runs.refresh_labels();
                app.push(AppCommand::SaveLab(Some(file)));
                self.next();
                false
            }
            1 => {
                if file.is_file() && !app.is_busy() {
                    // Closed: nothing of the old window is kept.
                    let options = AppOptions { scan_runs: false, ..app.options.clone() };
                    *app = DepthLabApp::with_state(&app.ctx.clone(), super::state::Persisted::default(), options);
                    app.push(AppCommand::OpenLab(file));
                    self.next();
                }
                false
            }
            _ => !app.is_busy() && app.sweep.followed.as_ref().is_some_and(|f| f.total > 0) && self.frames_in_phase > 30,
        }
    }

    /// Runs the lesson's two steps, one after the other, as a teacher
    /// would click them; ready when the second's figures are in.
    fn lesson_ready(&mut self, app: &mut DepthLabApp) -> bool {
        let Some(lesson) = &app.lesson else { return false };
        if lesson.running.is_some() || app.is_training() {
            return false;
        }
        match self.phase {
            1 | 2 => {
                app.push(AppCommand::RunLessonStep(self.phase - 1));
                self.next();
                false
            }
            _ => {
                let filled = lesson.filled.get(1).and_then(Option::as_ref).is_some_and(|f| f.missing.is_empty());
                if filled {
                    app.state.tab = Tab::Train;
                }
                filled && self.frames_in_phase > 30
            }
        }
    }

    /// Trains plain-14 and resnet-14, then runs the analysis on both.
    fn why_ready(&mut self, app: &mut DepthLabApp) -> bool {
        if app.is_training() || app.why.is_running() {
            return false;
        }
        match self.phase {
            1 | 2 => {
                app.push(AppCommand::LoadPreset(if self.phase == 1 { "plain-14" } else { "resnet-14" }.into()));
                app.push(AppCommand::StartTraining);
                self.next();
                false
            }
            3 => {
                let ids: Vec<_> = app.runs.runs.iter().map(|r| r.id).collect();
                app.why.runs = [ids.first().copied(), ids.get(1).copied()];
                app.state.tab = Tab::Why;
                app.push(AppCommand::StartAnalysis);
                self.next();
                false
            }
            // Done when both sides show a result (or say why not).
            _ => {
                let done = (0..2).all(|side| app.why.results[side].is_some() || app.why.errors[side].is_some());
                done && self.frames_in_phase > 20
            }
        }
    }

    /// Whether the scene is ready for its picture (some scenes advance
    /// through more phases first).
    fn ready(&mut self, app: &mut DepthLabApp) -> bool {
        match self.scene.kind {
            SceneKind::Builder | SceneKind::Highway | SceneKind::Fractal | SceneKind::Invalid => true,
            SceneKind::Large => {
                app.ctx.request_repaint();
                self.frames > 800
            }
            // After the run, the window idles as the user would leave it,
            // then closes (writing the frame log).
            SceneKind::Bench(_) => {
                if app.is_training() || app.runs.runs.is_empty() {
                    return false;
                }
                let waited = self.finished_at.get_or_insert_with(Instant::now).elapsed();
                // One frame when the idle time is over (any frame in between
                // replaces the request, so it is made again each time).
                app.ctx.request_repaint_after(BENCH_IDLE.saturating_sub(waited));
                waited >= BENCH_IDLE
            }
            // Mid-training, with a gradient probe of all 602 layers per step.
            SceneKind::Thousand => app.active_run().is_some_and(|r| r.steps.len() >= THOUSAND_STEPS - 4 && r.gradients.len() >= 4),
            SceneKind::Training => match self.phase {
                1 if !app.is_training() && !app.runs.runs.is_empty() => {
                    app.push(AppCommand::LoadPreset("resnet-20".into()));
                    app.push(AppCommand::StartTraining);
                    self.next();
                    false
                }
                2 => app.active_run().is_some_and(|r| r.steps.len() >= 36 && r.gradients.len() >= 10),
                _ => false,
            },
            SceneKind::Sweep => self.frames_in_phase > 30 && !app.is_training() && !app.sweep.rows.is_empty(),
            // Mid-training: both a third of the way through.
            SceneKind::Playground => {
                let steps: Vec<usize> =
                    app.sweep.views.iter().filter_map(|v| app.runs.get(v.1)).filter_map(|r| r.boundary.as_ref().map(|b| b.step)).collect();
                steps.len() == 2 && steps.iter().all(|&s| s >= PLAYGROUND_EPOCHS * 31 * 2 / 3)
            }
            SceneKind::Comparison => self.comparison_ready(app),
            SceneKind::Reopened => self.reopened_ready(app),
            SceneKind::Lesson => self.lesson_ready(app),
            SceneKind::Why(_) => self.why_ready(app),
            SceneKind::Classify => match self.phase {
                1 if !app.is_training() && !app.runs.runs.is_empty() => {
                    app.state.image_path = "assets/samples/sneaker.png".into();
                    app.state.tab = Tab::Classify;
                    app.push(AppCommand::ClassifyImage("assets/samples/sneaker.png".into()));
                    self.next();
                    false
                }
                2 => app.classify.result.is_some() && !app.classify.busy,
                _ => false,
            },
            SceneKind::ClassifyError => match self.phase {
                1 if !app.is_training() && !app.runs.runs.is_empty() => {
                    let missing = std::env::temp_dir().join("depthlab-no-such-image.png");
                    app.state.image_path = missing.display().to_string();
                    app.state.tab = Tab::Classify;
                    app.push(AppCommand::ClassifyImage(missing));
                    self.next();
                    false
                }
                2 => app.classify.error.is_some() && !app.classify.busy,
                _ => false,
            },
        }
    }
}
