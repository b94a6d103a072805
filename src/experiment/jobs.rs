//! A sweep handed to other machines: `jobs.txt`, one self-contained shell
//! command per run (`depthlab train …` with its seed and its own run folder),
//! for any executor (`xargs -P`, GNU parallel, a cluster's job runner), and
//! `sweep.sbatch`, a Slurm job array whose task N runs line N + 1.

use std::path::Path;

use super::files::SweepFile;
use crate::train::TrainConfig;
use crate::util::fsio::write_atomic;

pub const JOBS_FILE: &str = "jobs.txt";
pub const SBATCH_FILE: &str = "sweep.sbatch";

/// Resources each Slurm task asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmOptions {
    /// `--cpus-per-task` (also each run's `--threads`).
    pub cpus: usize,
    /// `--time`, e.g. `01:00:00`.
    pub time: Option<String>,
    pub partition: Option<String>,
    /// `--mem`, e.g. `4G`.
    pub mem: Option<String>,
}

/// Quotes `text` for a POSIX shell when it needs it.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

/// The command of each planned run: the `depthlab` at `exe`, absolute
/// paths, every training flag spelled out, threads as `cpus` says.
pub fn job_lines(sweep_dir: &Path, file: &SweepFile, exe: &Path, cpus: Option<usize>) -> Vec<String> {
    file.runs
        .iter()
        .map(|run| {
            let config = TrainConfig { seed: run.seed, threads: cpus, ..file.train.clone() };
            let mut words = vec![exe.display().to_string(), "train".into(), "--arch".into(), run.arch.clone()];
            words.extend(config.to_args());
            words.push("--out".into());
            words.push(sweep_dir.join(&run.dir).display().to_string());
            words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// Writes `jobs.txt` and `sweep.sbatch` into `sweep_dir` (which must be an
/// absolute path that every machine sees).
pub fn write_jobs(sweep_dir: &Path, file: &SweepFile, exe: &Path, slurm: &SlurmOptions) -> Result<(), String> {
    let cpus = (slurm.cpus > 0).then_some(slurm.cpus);
    let lines = job_lines(sweep_dir, file, exe, cpus);
    let jobs_path = sweep_dir.join(JOBS_FILE);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write_atomic(&jobs_path, text.as_bytes()).map_err(|e| format!("{}: {e}", jobs_path.display()))?;
    let mut script = String::from("#!/bin/bash\n");
    script.push_str("# A depthlab sweep as a Slurm job array: task N runs line N + 1 of jobs.txt.\n");
    script.push_str("# Submit with: sbatch sweep.sbatch   then: depthlab sweep --collect <this folder>\n");
    script.push_str("#SBATCH --job-name=depthlab-sweep\n");
    script.push_str(&format!("#SBATCH --array=0-{}\n", lines.len().saturating_sub(1)));
    if let Some(c) = cpus {
        script.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(t) = &slurm.time {
        script.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(p) = &slurm.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(m) = &slurm.mem {
        script.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    script.push_str(&format!("#SBATCH --output={}\n", sweep_dir.join("slurm-%A_%a.out").display()));
    script.push_str("set -euo pipefail\n");
    script.push_str(&format!("line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\n", shell_quote(&jobs_path.display().to_string())));
    script.push_str("exec bash -c \"$line\"\n");
    let sbatch_path = sweep_dir.join(SBATCH_FILE);
    write_atomic(&sbatch_path, script.as_bytes()).map_err(|e| format!("{}: {e}", sbatch_path.display()))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn words_are_quoted_only_when_the_shell_would_split_them() {
        assert_eq!(shell_quote("resnet-20"), "resnet-20");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
