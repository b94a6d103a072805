//! `depthlab runs DIR`: the run folders under DIR (a runs folder, a sweep
//! folder), each with its architecture, status, steps and final accuracy. A
//! run whose writer died reads as `interrupted`; a folder that does not read
//! is listed with its error.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::CliError;
use crate::train::runfolder::{RunFolder, csv_field, run_settings};

#[derive(Args, Debug)]
pub struct RunsArgs {
    /// The folder to look in (run folders are found up to three levels down).
    pub dir: PathBuf,
    /// One JSON array: dir, arch, status, steps, epochs, final_test_accuracy, final_train_loss, reason, error.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// One CSV on standard output, a row per run: its status and final
    /// metrics, then every setting (arch, dataset, lr, batch_size, seed, ...).
    #[arg(long)]
    pub csv: bool,
}

/// The leading columns of `--csv`, before the settings.
const CSV_METRICS: [&str; 15] = [
    "dir",
    "status",
    "steps",
    "epochs_completed",
    "final_train_loss",
    "final_train_accuracy",
    "final_test_loss",
    "final_test_accuracy",
    "params",
    "depth",
    "images_per_sec",
    "wall_secs",
    "model_sha256",
    "reason",
    "error",
];

/// One `--csv` row: column name to value.
fn csv_row(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let mut row = std::collections::BTreeMap::new();
    row.insert("dir".to_string(), dir.display().to_string());
    let run = match RunFolder::open(dir) {
        Ok(run) => run,
        Err(e) => {
            row.insert("status".into(), "unreadable".into());
            row.insert("error".into(), e.to_string());
            return row;
        }
    };
    row.insert("status".into(), run.status.to_string());
    if let Some(s) = &run.summary {
        let opt = |v: Option<f32>| v.map(|v| v.to_string()).unwrap_or_default();
        for (name, value) in [
            ("steps", s.steps.to_string()),
            ("epochs_completed", s.epochs.to_string()),
            ("final_train_loss", opt(s.final_train_loss)),
            ("final_train_accuracy", opt(s.final_train_accuracy)),
            ("final_test_loss", opt(s.final_test_loss)),
            ("final_test_accuracy", opt(s.final_test_accuracy)),
            ("params", s.params.to_string()),
            ("depth", s.depth.to_string()),
            ("images_per_sec", opt(s.images_per_sec)),
            ("wall_secs", s.wall_secs.to_string()),
            ("model_sha256", s.model_sha256.clone().unwrap_or_default()),
            ("reason", s.reason.clone().unwrap_or_default()),
        ] {
            row.insert(name.to_string(), value);
        }
    } else {
        row.insert("steps".into(), run.metrics.iter().filter(|m| !m.test).count().to_string());
    }
    for (name, value) in run_settings(&run.arch, &run.record) {
        row.entry(name).or_insert_with(|| value.to_string());
    }
    row
}

/// `--csv`: the metric columns, then the settings any run has, by name.
fn print_csv(folders: &[PathBuf]) {
    let rows: Vec<_> = folders.iter().map(|d| csv_row(d)).collect();
    let mut settings: Vec<&String> = rows.iter().flat_map(|r| r.keys()).filter(|k| !CSV_METRICS.contains(&k.as_str())).collect();
    settings.sort();
    settings.dedup();
    let columns: Vec<&str> = CSV_METRICS.iter().copied().chain(settings.iter().map(|s| s.as_str())).collect();
    let mut out = columns.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for row in &rows {
        let fields: Vec<String> = columns.iter().map(|c| row.get(*c).map(|v| csv_field(v)).unwrap_or_default()).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    print!("{out}");
}

/// Folders under `dir` (itself included) that hold a `train.json`, sorted.
fn run_folders(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if dir.join("train.json").is_file() {
        found.push(dir.to_path_buf());
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for d in dirs {
        run_folders(&d, depth - 1, found);
    }
}

pub fn runs(args: &RunsArgs) -> Result<(), CliError> {
    if !args.dir.is_dir() {
        return Err(CliError::new(2, format!("{}: no such folder", args.dir.display())));
    }
    let mut folders = Vec::new();
    run_folders(&args.dir, 3, &mut folders);
    if args.csv {
        print_csv(&folders);
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = folders
        .iter()
        .map(|dir| match RunFolder::open(dir) {
            Ok(run) => {
                let summary = run.summary.as_ref();
                let steps = summary.map_or_else(|| run.metrics.iter().filter(|m| !m.test).count(), |s| s.steps);
                json!({
                    "dir": dir.display().to_string(),
                    "arch": run.arch.name,
                    "status": run.status.to_string(),
                    "steps": steps,
                    "epochs": summary.map(|s| s.epochs),
                    "final_test_accuracy": summary.and_then(|s| s.final_test_accuracy),
                    "final_train_loss": summary.and_then(|s| s.final_train_loss),
                    "reason": summary.and_then(|s| s.reason.clone()),
                    "error": null,
                })
            }
            Err(e) => json!({ "dir": dir.display().to_string(), "status": "unreadable", "error": e.to_string() }),
        })
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows).map_err(|e| CliError::new(1, e.to_string()))?);
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("no run folders under {}", args.dir.display());
        return Ok(());
    }
    let name = |row: &serde_json::Value| {
        let dir = PathBuf::from(row["dir"].as_str().unwrap_or_default());
        dir.strip_prefix(&args.dir).ok().filter(|p| !p.as_os_str().is_empty()).unwrap_or(&dir).display().to_string()
    };
    let width = rows.iter().map(|r| name(r).chars().count()).max().unwrap_or(3).max(3);
    // Wide enough for the longest name (`resnet-110 [zero residual init]`).
    let arch_width = rows.iter().map(|r| r["arch"].as_str().unwrap_or("-").chars().count()).max().unwrap_or(4).max(4);
    println!("{:width$}  {:<arch_width$} {:<12} {:>7} {:>9}", "run", "arch", "status", "steps", "test acc");
    for row in &rows {
        let accuracy = row["final_test_accuracy"].as_f64().map_or_else(|| "-".into(), |a| format!("{:.2}%", a * 100.0));
        println!(
            "{:width$}  {:<arch_width$} {:<12} {:>7} {:>9}",
            name(row),
            row["arch"].as_str().unwrap_or("-"),
            row["status"].as_str().unwrap_or("-"),
            row["steps"].as_u64().map_or_else(|| "-".into(), |s| s.to_string()),
            accuracy
        );
        if let Some(error) = row["error"].as_str() {
            println!("{:width$}  error: {error}", "");
        }
    }
    Ok(())
}
