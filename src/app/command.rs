//! What the panels ask for. Panels only read state and return commands; the
//! app applies them in one place at the end of the frame.

use std::path::PathBuf;

use super::runs::RunId;
use super::state::Tab;
use super::tasks::Pick;
use crate::arch::BlockKind;

#[derive(Clone, Debug, PartialEq)]
pub enum AppCommand {
    SetTab(Tab),
    ToggleTheme,
    ToggleHelp,
    Message(String),
    /// Presentation mode on or off.
    SetPresent(bool),
    /// Presentation mode at this zoom (1.5 to 2.5).
    SetPresentZoom(f32),

    // Lessons.
    /// Start a built-in lesson (or one in a lab file) at step 1.
    StartLesson(String),
    /// Show step `i` (0-based).
    LessonStep(usize),
    /// Run what step `i` needs.
    RunLessonStep(usize),
    CloseLesson,

    // Lab files.
    NewLab,
    OpenLab(PathBuf),
    /// Save the lab to this file (`None`: to its own file, or ask where).
    SaveLab(Option<PathBuf>),

    // The builder.
    InsertBlock {
        index: usize,
        kind: BlockKind,
    },
    MoveBlock {
        from: usize,
        to: usize,
    },
    DeleteBlock(usize),
    DuplicateBlock(usize),
    SelectBlock(Option<usize>),
    ToggleExpanded(usize),
    LoadPreset(String),
    NewArchitecture,
    Undo,
    Redo,
    SaveArchitecture(PathBuf),
    OpenArchitecture(PathBuf),
    PickFile(Pick),

    // Training.
    StartTraining,
    /// Train more, starting from a finished run's weights.
    ContinueRun(RunId),
    PauseTraining,
    ResumeTraining,
    StopTraining,
    SetLearningRate(f64),
    SelectRun(RunId),
    SetRunVisible(RunId, bool),
    /// Show all runs, none, only one, or one group.
    ShowRuns(crate::app::runs::Visibility),
    RenameRun(RunId, String),
    AskDeleteRun(RunId),
    DeleteRun(RunId),
    LoadRunFolder(PathBuf),
    /// Write a run as PyTorch code and safetensors weights under the
    /// runs folder's `exports/`.
    ExportRunToPytorch(RunId),
    /// Copy a run's architecture into the builder.
    EditRunArchitecture(RunId),

    // The depth sweep.
    StartSweep,
    StopSweep,
    /// Follow a sweep folder (`None`: stop following).
    FollowSweep(Option<std::path::PathBuf>),

    // Plots.
    ExportCsv {
        name: String,
        csv: String,
    },
    /// A picture of the screen region `rect` (plots drawn by hand).
    ExportPng {
        name: String,
        rect: egui::Rect,
    },
    /// A line plot drawn again as a figure, with its title, axes and legend.
    ExportFigure {
        name: String,
        figure: Box<crate::report::figure::Figure>,
    },
    /// Back to each plot's automatic bounds after zooming or panning.
    ResetPlotViews,

    // The Why tab.
    StartAnalysis,
    CancelAnalysis,

    // Classify.
    ClassifyImage(PathBuf),
    SelectClassifierRun(RunId),
}
