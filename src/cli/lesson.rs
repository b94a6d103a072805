//! `depthlab lesson list` and `depthlab lesson run NAME`: the built-in
//! lessons (and teachers' own lab files) played without the window.

use clap::{Args, Subcommand};

use super::{CliError, say};
use crate::lesson;

#[derive(Subcommand, Debug)]
pub enum LessonCommand {
    /// The built-in lessons: name, title, steps.
    List(ListArgs),
    /// Play every step of a lesson (a built-in name or a .depthlab file) and report each step's wall time and figures.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A built-in lesson's name (`depthlab lesson list`) or a lab file holding a lesson.
    pub lesson: String,
    /// Where the lesson's runs go (default: runs/lesson-NAME-TIME).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// CPU threads each run computes on (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// The report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

pub fn lesson(command: &LessonCommand) -> Result<(), CliError> {
    match command {
        LessonCommand::List(args) => list(args),
        LessonCommand::Run(args) => run(args),
    }
}

fn list(args: &ListArgs) -> Result<(), CliError> {
    let lessons = lesson::builtins();
    if args.json {
        let rows: Vec<serde_json::Value> = lessons
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "title": l.title,
                    "summary": l.summary,
                    "steps": l.steps.iter().map(|s| s.title.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        say!(stdout; "{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for l in lessons {
            let n = l.steps.len();
            say!(stdout; "{:<22} {} ({n} step{})", l.name, l.title, if n == 1 { "" } else { "s" });
        }
    }
    Ok(())
}

fn run(args: &RunArgs) -> Result<(), CliError> {
    let lesson = lesson::find(&args.lesson)?;
    lesson::check(&lesson)?;
    crate::util::threads::check(args.threads).map_err(|e| CliError::new(2, e))?;
    let out = args.out.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        std::path::PathBuf::from("runs").join(format!("lesson-{}-{}", lesson.name, crate::util::timestamp(secs)))
    });
    if out.join("lesson.json").exists() {
        return Err(CliError::new(2, format!("{} already holds a played lesson: choose another --out", out.display())));
    }
    std::fs::create_dir_all(&out).map_err(|e| CliError::new(1, format!("cannot create {}: {e}", out.display())))?;
    say!("{}: {} steps, runs in {}", lesson.title, lesson.steps.len(), out.display());
    let report = lesson::run::play(&lesson, &out, args.threads, |step| {
        say!("step {} ({:.1} s): {}", step.step, step.wall_secs, step.title);
        say!("  {}", step.look_for.text);
    })?;
    let json = serde_json::to_string_pretty(&report)?;
    crate::util::fsio::write_atomic(&out.join("lesson.json"), json.as_bytes()).map_err(|e| CliError::new(1, e))?;
    if args.json {
        say!(stdout; "{json}");
    }
    let missing = report.missing();
    if !missing.is_empty() {
        return Err(CliError::new(1, format!("figures the lesson quotes could not be given: {}", missing.join("; "))));
    }
    say!("done in {:.1} s", report.total_secs);
    Ok(())
}
