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
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Build, Tab::Train, Tab::Sweep, Tab::Classify];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Build => "Build",
            Tab::Train => "Train",
            Tab::Sweep => "Depth sweep",
            Tab::Classify => "Classify",
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
    /// Where runs are written and read from.
    pub runs_dir: String,
    /// The image path field of the classify panel.
    pub image_path: String,
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
            runs_dir: "runs".into(),
            image_path: "assets/samples/sneaker.png".into(),
        }
    }
}
