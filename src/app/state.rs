//! What the lab remembers between launches (a serde struct, everything
//! defaulted so an older or damaged file never stops the lab from opening).

use serde::{Deserialize, Serialize};

use crate::arch::presets::Family;
use crate::train::TrainConfig;

/// The four places of the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tab {
    #[default]
    Build,
    Train,
    Sweep,
    Classify,
    /// Lesion study, gradient by path length, loss landscape.
    Why,
    /// The built-in lessons.
    Lessons,
}

impl Tab {
    pub const ALL: [Tab; 6] = [Tab::Build, Tab::Train, Tab::Sweep, Tab::Classify, Tab::Why, Tab::Lessons];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Build => "Build",
            Tab::Train => "Train",
            Tab::Sweep => "Depth sweep",
            Tab::Classify => "Classify",
            Tab::Why => "Why it works",
            Tab::Lessons => "Lessons",
        }
    }
}

/// The sweep form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SweepSettings {
    pub families: Vec<Family>,
    pub depths: String,
    pub seeds: usize,
    pub epochs: usize,
    /// Steps per run instead of epochs, when set.
    pub max_steps: Option<usize>,
    pub out_dir: String,
    /// Runs at once (0: the machine's default, `experiment::default_jobs`).
    pub jobs: usize,
    /// Per-layer settings of every net of the sweep (its own, never the
    /// Train tab's: a sweep shows every setting it changes).
    pub overrides: crate::arch::LayerOverrides,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            families: vec![Family::Plain, Family::Resnet],
            depths: "8,20,32,44".into(),
            seeds: 1,
            epochs: 1,
            max_steps: Some(150),
            out_dir: "sweeps".into(),
            jobs: 0,
            overrides: crate::arch::LayerOverrides::default(),
        }
    }
}

/// Everything persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    pub dark: bool,
    pub tab: Tab,
    /// The architecture in the builder, as JSON.
    pub arch_json: String,
    /// The path field of the builder's save/load row.
    pub arch_path: String,
    pub train: TrainConfig,
    pub sweep: SweepSettings,
    /// Gradient plots: show output-gradient and weight-gradient norms.
    pub show_output_grad: bool,
    pub show_weight_grad: bool,
    /// Loss and accuracy plots: runs that differ only by seed as one line,
    /// their mean with a band of ± one standard deviation.
    pub group_seeds: bool,
    /// Where runs are written and read from.
    pub runs_dir: String,
    /// The image path field of the classify panel.
    pub image_path: String,
    /// The lab file the window shows (empty: a lab not saved yet).
    pub lab_path: String,
    /// Lab files opened or saved lately, newest first.
    pub recent_labs: Vec<String>,
    /// Presentation mode: settings panels hidden, the UI zoomed.
    pub present: bool,
    /// The zoom of presentation mode (1.5 to 2.5).
    pub present_zoom: f32,
    /// The zoom outside presentation mode (while presenting).
    pub zoom: f32,
}

impl Default for Persisted {
    fn default() -> Self {
        Self {
            dark: true,
            tab: Tab::Build,
            arch_json: String::new(),
            arch_path: "architecture.json".into(),
            train: TrainConfig { epochs: 2, probe_every: 5, ..TrainConfig::default() },
            sweep: SweepSettings::default(),
            show_output_grad: true,
            show_weight_grad: false,
            group_seeds: true,
            runs_dir: "runs".into(),
            image_path: sample_image(),
            lab_path: String::new(),
            recent_labs: Vec::new(),
            present: false,
            present_zoom: super::present::DEFAULT_ZOOM,
            zoom: 1.0,
        }
    }
}

/// The bundled sample image as an absolute path that exists wherever the
/// lab was started: beside the working folder, beside the binary (a
/// checkout's target/release), or where it was built; empty when none is.
fn sample_image() -> String {
    let relative = std::path::Path::new("assets/samples/sneaker.png");
    let mut places: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        places.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        places.extend(exe.ancestors().skip(1).take(4).map(|p| p.to_path_buf()));
    }
    places.push(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    places.into_iter().map(|p| p.join(relative)).find(|p| p.is_file()).map(|p| p.display().to_string()).unwrap_or_default()
}
