//! Lessons: lab files with numbered steps, for a class (docs/LESSONS.md).
//! Each step has a short text, one action that sets up and runs what the
//! step needs (train named runs, a depth sweep, a lesion study), what to
//! look for with the lab's own figures quoted (`{plain.test_accuracy}`,
//! filled from this lab's runs, never written in), and a question with its
//! answer. The window's Lessons tab and `depthlab lesson run` play the same
//! steps, so a lesson is tested like code: every step's figures must exist.

pub mod figures;
pub mod run;

use serde::{Deserialize, Serialize};

use crate::arch::presets::Family;
use crate::train::TrainConfig;

/// A lesson: what a lab file's `lesson` field holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lesson {
    /// Short name (`vanishing-gradients`), for `depthlab lesson run NAME`.
    pub name: String,
    pub title: String,
    /// One or two sentences: what the class will see.
    pub summary: String,
    pub steps: Vec<Step>,
}

/// One numbered step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub title: String,
    /// What to do and why, in a few sentences.
    pub text: String,
    /// What the step's button sets up and runs.
    #[serde(default)]
    pub action: Action,
    /// What to look for, with `{figure}` placeholders filled from this
    /// lab's results (see [`figures`]).
    #[serde(default)]
    pub look_for: String,
    #[serde(default)]
    pub question: String,
    /// Shown folded until asked for.
    #[serde(default)]
    pub answer: String,
}

/// What a step runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// Nothing to compute: read, look, answer.
    #[default]
    Read,
    /// Train these runs one after another.
    Train { runs: Vec<RunSpec> },
    /// A depth sweep (its runs are named `FAMILY-DEPTH`).
    Sweep {
        /// The name figures use (`{NAME.plain-20.test_error}`).
        name: String,
        families: Vec<Family>,
        depths: Vec<usize>,
        #[serde(default = "one")]
        seeds: usize,
        #[serde(default)]
        config: TrainConfig,
    },
    /// The lesion study on runs trained in earlier steps, by name.
    Lesion {
        runs: Vec<String>,
        #[serde(default = "lesion_examples")]
        examples: usize,
    },
}

fn one() -> usize {
    1
}

fn lesion_examples() -> usize {
    500
}

/// A run a step trains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The name figures and the run list use (`plain`).
    pub name: String,
    /// A preset (`plain-mlp-20`).
    pub arch: String,
    #[serde(default)]
    pub config: TrainConfig,
}

impl RunSpec {
    /// The run's name in the window's run list (`plain · plain-mlp-20`);
    /// a reopened lesson finds its runs by it.
    pub fn run_name(&self) -> String {
        format!("{} · {}", self.name, self.arch)
    }
}

impl Action {
    /// The runs this action trains, with their names.
    pub fn runs(&self) -> &[RunSpec] {
        match self {
            Action::Train { runs } => runs,
            _ => &[],
        }
    }

    /// What the step's button says.
    pub fn button(&self) -> String {
        match self {
            Action::Read => "Nothing to run".into(),
            Action::Train { runs } => {
                format!("Train {}", runs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(" and "))
            }
            Action::Sweep { families, depths, .. } => {
                format!("Run the sweep ({} × {} depths)", families.iter().map(|f| f.prefix()).collect::<Vec<_>>().join(", "), depths.len())
            }
            Action::Lesion { runs, .. } => format!("Lesion study of {}", runs.join(" and ")),
        }
    }
}

/// A lesson that cannot be read or played.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("cannot read {path}: {source}")]
    Read { path: std::path::PathBuf, source: std::io::Error },
    #[error("{0}: not a lesson: {1}")]
    Parse(String, serde_json::Error),
    #[error("{0} is a lab file without a lesson (its \"lesson\" field is missing)")]
    NoLesson(String),
    #[error("no lesson named '{0}' (built in: {names})", names = builtin_names().join(", "))]
    Unknown(String),
    #[error("step {step}: {reason}")]
    Step { step: usize, reason: String },
    #[error("step {step} quotes {error}")]
    Figure { step: usize, error: figures::FigureError },
}

impl LessonError {
    pub fn exit_code(&self) -> i32 {
        match self {
            LessonError::Read { .. } | LessonError::Step { .. } => 1,
            _ => 2,
        }
    }
}

/// Checks that every figure a step quotes is one the steps up to it produce.
pub fn check(lesson: &Lesson) -> Result<(), LessonError> {
    let mut plan = figures::Plan::default();
    for (i, step) in lesson.steps.iter().enumerate() {
        if let Action::Lesion { runs, .. } = &step.action
            && let Some(run) = runs.iter().find(|r| !plan.has_run(r))
        {
            return Err(LessonError::Step { step: i + 1, reason: format!("the lesion study names {run}, which no earlier step trains") });
        }
        plan.add(&step.action);
        for key in figures::placeholders(&step.look_for) {
            plan.check(&key).map_err(|error| LessonError::Figure { step: i + 1, error })?;
        }
    }
    Ok(())
}

/// The part of a lab file a lesson lives in.
#[derive(Deserialize)]
struct LessonPart {
    lesson: Option<Lesson>,
}

/// The lesson in a lab file's text (`what` names it in errors).
pub fn parse(text: &str, what: &str) -> Result<Lesson, LessonError> {
    let part: LessonPart = serde_json::from_str(text).map_err(|e| LessonError::Parse(what.into(), e))?;
    part.lesson.ok_or_else(|| LessonError::NoLesson(what.into()))
}

/// The built-in lessons' lab files, in teaching order.
pub const BUILTIN: [(&str, &str); 5] = [
    ("vanishing-gradients", include_str!("../../assets/lessons/vanishing-gradients.depthlab")),
    ("batchnorm-and-init", include_str!("../../assets/lessons/batchnorm-and-init.depthlab")),
    ("degradation", include_str!("../../assets/lessons/degradation.depthlab")),
    ("why-it-works", include_str!("../../assets/lessons/why-it-works.depthlab")),
    ("a-thousand-layers", include_str!("../../assets/lessons/a-thousand-layers.depthlab")),
];

pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// The built-in lessons, parsed once (the window lists them every frame it
/// shows the Lessons tab); every one parses (tested).
pub fn builtins() -> &'static [Lesson] {
    static PARSED: std::sync::OnceLock<Vec<Lesson>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| BUILTIN.iter().filter_map(|(name, text)| parse(text, name).ok()).collect())
}

/// A built-in lesson's lab file text.
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// A built-in lesson by name, or a lab file holding one.
pub fn find(name_or_file: &str) -> Result<Lesson, LessonError> {
    if let Some(text) = builtin_text(name_or_file) {
        return parse(text, name_or_file);
    }
    let path = std::path::Path::new(name_or_file);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|source| LessonError::Read { path: path.to_path_buf(), source })?;
        return parse(&text, name_or_file);
    }
    Err(LessonError::Unknown(name_or_file.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_lesson_parses_and_quotes_only_figures_it_computes() {
        for name in builtin_names() {
            let lesson = find(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(lesson.name, name);
            assert!(!lesson.steps.is_empty());
            check(&lesson).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(builtins().contains(&lesson), "{name} is listed");
            for (i, step) in lesson.steps.iter().enumerate() {
                assert!(!step.question.is_empty() && !step.answer.is_empty(), "{name} step {}: a question and its answer", i + 1);
            }
        }
    }

    #[test]
    fn lessons_that_are_not_lessons_are_refused_in_words() {
        assert!(matches!(find("no-such-lesson"), Err(LessonError::Unknown(_))));
        assert!(matches!(parse("{\"format\": \"depthlab-lab\"}", "x"), Err(LessonError::NoLesson(_))));
        assert!(matches!(parse("{\"lesson\": {\"name\": 3}}", "x"), Err(LessonError::Parse(..))));
        // A figure quoted before the step that makes it.
        let mut lesson = find("why-it-works").unwrap();
        lesson.steps.swap(0, 1);
        assert!(matches!(check(&lesson), Err(LessonError::Step { step: 1, .. })), "{:?}", check(&lesson));
        lesson.steps.swap(0, 1);
        lesson.steps[0].look_for = "{lesion.plain.median_rise}".into();
        assert!(matches!(check(&lesson), Err(LessonError::Figure { step: 1, .. })), "{:?}", check(&lesson));
        let e = parse(
            "{\"lesson\": {\"name\": \"a\", \"title\": \"t\", \"summary\": \"s\", \"steps\": [{\"title\": \"x\", \"text\": \"y\", \"action\": {\"do\": \"dance\"}}]}}",
            "x",
        );
        assert!(e.unwrap_err().to_string().contains("dance"));
    }
}
