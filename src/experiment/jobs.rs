//! A sweep handed to other machines: `jobs.txt`, one self-contained shell
//! command per run (`depthlab train …` with its seed and its own run folder),
//! for any executor (`xargs -P`, GNU parallel, a cluster's job runner), and
//! `sweep.sbatch`, a Slurm job array whose task N runs line N + 1.

use std::path::Path;

use super::files::SweepFile;
use crate::train::TrainConfig;
use crate::util::fsio::{FileError, write_atomic};

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

/// Most characters in a Slurm value.
const MAX_SLURM_VALUE: usize = 64;

/// A Slurm value that cannot go on an `#SBATCH` line as it is: one with a
/// line break or a shell-special character could end the line and run as a
/// command of the script.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SlurmValueError {
    #[error("--slurm-time {0:?}: give a Slurm time such as 30, 01:00:00, 2-00:00:00 or UNLIMITED")]
    Time(String),
    #[error("--slurm-partition {0:?}: give partition names of letters, digits, '-', '_' and '.', separated by commas")]
    Partition(String),
    #[error("--slurm-mem {0:?}: give a whole number with an optional unit K, M, G or T, such as 4G")]
    Mem(String),
    #[error("--slurm-cpus {0}: give 0 to {max}", max = crate::util::threads::MAX_THREADS)]
    Cpus(usize),
    #[error("the sweep folder {0:?} has a control character, which cannot go on an #SBATCH line")]
    Folder(String),
}

/// Why `jobs.txt` and `sweep.sbatch` were not written.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error(transparent)]
    Slurm(#[from] SlurmValueError),
    #[error(transparent)]
    File(#[from] FileError),
}

/// `--time`: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` or unlimited.
pub fn check_time(text: &str) -> Result<(), SlurmValueError> {
    let numbers = |part: &str, most: usize| {
        let fields: Vec<&str> = part.split(':').collect();
        fields.len() <= most && fields.iter().all(|f| !f.is_empty() && f.len() <= 8 && f.bytes().all(|b| b.is_ascii_digit()))
    };
    let ok = text.len() <= MAX_SLURM_VALUE
        && (["unlimited", "infinite"].contains(&text.to_ascii_lowercase().as_str())
            || match text.split_once('-') {
                Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
                None => numbers(text, 3),
            });
    if ok { Ok(()) } else { Err(SlurmValueError::Time(text.to_string())) }
}

/// `--partition`: one or more names separated by commas.
pub fn check_partition(text: &str) -> Result<(), SlurmValueError> {
    let name = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if text.len() <= MAX_SLURM_VALUE && text.split(',').all(name) { Ok(()) } else { Err(SlurmValueError::Partition(text.to_string())) }
}

/// `--mem`: a whole number and an optional unit.
pub fn check_mem(text: &str) -> Result<(), SlurmValueError> {
    let digits = text.strip_suffix(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']).unwrap_or(text);
    let ok = !digits.is_empty() && digits.len() <= 16 && digits.bytes().all(|b| b.is_ascii_digit());
    if ok { Ok(()) } else { Err(SlurmValueError::Mem(text.to_string())) }
}

/// The sweep folder goes on an `#SBATCH --output` line: no line breaks or
/// other control characters.
pub fn check_folder(dir: &Path) -> Result<(), SlurmValueError> {
    let folder = dir.display().to_string();
    if folder.chars().any(char::is_control) { Err(SlurmValueError::Folder(folder)) } else { Ok(()) }
}

impl SlurmOptions {
    /// Checks every value that goes on an `#SBATCH` line.
    pub fn check(&self) -> Result<(), SlurmValueError> {
        if self.cpus > crate::util::threads::MAX_THREADS {
            return Err(SlurmValueError::Cpus(self.cpus));
        }
        self.time.as_deref().map_or(Ok(()), check_time)?;
        self.partition.as_deref().map_or(Ok(()), check_partition)?;
        self.mem.as_deref().map_or(Ok(()), check_mem)
    }
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
pub fn write_jobs(sweep_dir: &Path, file: &SweepFile, exe: &Path, slurm: &SlurmOptions) -> Result<(), JobsError> {
    slurm.check()?;
    check_folder(sweep_dir)?;
    let cpus = (slurm.cpus > 0).then_some(slurm.cpus);
    let lines = job_lines(sweep_dir, file, exe, cpus);
    let jobs_path = sweep_dir.join(JOBS_FILE);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write_atomic(&jobs_path, text.as_bytes()).map_err(FileError::io(&jobs_path))?;
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
    Ok(write_atomic(&sbatch_path, script.as_bytes()).map_err(FileError::io(&sbatch_path))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_values_are_checked_word_by_word() {
        for time in ["30", "30:00", "01:00:00", "2-0", "2-12:00", "2-12:00:00", "UNLIMITED", "infinite"] {
            assert_eq!(check_time(time), Ok(()), "{time}");
        }
        for time in ["", "1:2:3:4", "01:00:00\nrm -rf /", "1h", "-1", "1-", "1-2-3", "01:00:00 #", "$(reboot)", "1;2"] {
            assert!(check_time(time).is_err(), "{time:?}");
        }
        for partition in ["gpu", "gpu,cpu", "long_queue-2.a"] {
            assert_eq!(check_partition(partition), Ok(()), "{partition}");
        }
        for partition in ["", "gpu,", "a b", "gpu\nrm -rf /", "`id`", "a;b", "a'b"] {
            assert!(check_partition(partition).is_err(), "{partition:?}");
        }
        for mem in ["4G", "4096", "500m", "0"] {
            assert_eq!(check_mem(mem), Ok(()), "{mem}");
        }
        for mem in ["", "G", "4GB", "4 G", "-4G", "4G\nrm -rf /", "$HOME", "99999999999999999999G"] {
            assert!(check_mem(mem).is_err(), "{mem:?}");
        }
    }

    #[test]
    fn words_are_quoted_only_when_the_shell_would_split_them() {
        assert_eq!(shell_quote("resnet-20"), "resnet-20");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
