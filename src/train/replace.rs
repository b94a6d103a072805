//! `train --overwrite` without losing the run it replaces: the old run's
//! files are moved aside into `DIR/.replaced/` (renames, so a full disk
//! cannot stop it), the new run is written in `DIR`, and the old files are
//! deleted only once the new run has saved its weights and summary. A new
//! run that could not (a full disk, a crash before its first save) is
//! removed and the old one put back as it was.
//!
//! A process killed between the two leaves `.replaced/` behind; the next
//! overwrite of the folder resolves it first: a finished run in `DIR`
//! supersedes it, otherwise it is put back.

use std::path::{Path, PathBuf};

use super::runfolder::{MODEL_FILE, RunFolderError, SUMMARY_FILE, clear_run, run_file_names};
use crate::util::fsio::FileError;
use crate::util::lock::FolderLock;

/// The folder inside a run folder that holds the run being replaced.
pub const REPLACED_DIR: &str = ".replaced";

/// A run moved aside while a new one is written in its folder.
#[derive(Debug)]
pub struct SetAside {
    dir: PathBuf,
}

/// Whether `dir` holds a finished run: its weights and its summary.
fn holds_finished_run(dir: &Path) -> bool {
    dir.join(MODEL_FILE).is_file() && dir.join(SUMMARY_FILE).is_file()
}

/// Deletes the run set aside in `dir`.
fn discard_aside(dir: &Path) -> Result<(), FileError> {
    let aside = dir.join(REPLACED_DIR);
    std::fs::remove_dir_all(&aside).map_err(FileError::remove(&aside))
}

fn move_files(from: &Path, to: &Path, names: &[String]) -> Result<(), FileError> {
    for name in names {
        std::fs::rename(from.join(name), to.join(name)).map_err(|source| FileError::Move {
            path: from.join(name),
            to: to.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Moves the run in `dir` (if any) into `dir/.replaced/`, after resolving
/// one an interrupted overwrite left there. `None` when `dir` holds no run.
pub fn set_aside(dir: &Path) -> Result<Option<SetAside>, RunFolderError> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let aside = dir.join(REPLACED_DIR);
    if aside.is_dir() {
        if holds_finished_run(dir) {
            // The overwrite that left it finished: the old run was replaced.
            discard_aside(dir)?;
        } else {
            SetAside { dir: dir.to_path_buf() }.restore()?;
        }
    }
    let _lock = FolderLock::acquire(dir)?;
    let names = run_file_names(dir)?;
    if names.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(&aside).map_err(FileError::io(&aside))?;
    move_files(dir, &aside, &names)?;
    Ok(Some(SetAside { dir: dir.to_path_buf() }))
}

impl SetAside {
    /// Ends the replacement: deletes the old run when the new one saved its
    /// weights and summary (`Ok(true)`), else removes the new one and puts
    /// the old one back (`Ok(false)`).
    pub fn finish(self) -> Result<bool, RunFolderError> {
        if holds_finished_run(&self.dir) {
            discard_aside(&self.dir)?;
            Ok(true)
        } else {
            self.restore()?;
            Ok(false)
        }
    }

    /// Removes whatever run is in the folder and moves the old one back.
    fn restore(self) -> Result<(), RunFolderError> {
        let aside = self.dir.join(REPLACED_DIR);
        clear_run(&self.dir)?;
        let names: Vec<String> = std::fs::read_dir(&aside)
            .map_err(FileError::io(&aside))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        move_files(&aside, &self.dir, &names)?;
        Ok(std::fs::remove_dir(&aside).map_err(FileError::remove(&aside))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, tag: &str, finished: bool) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("train.json"), tag).unwrap();
        std::fs::write(dir.join("events.out.tfevents.1.host.1.depthlab"), tag).unwrap();
        if finished {
            std::fs::write(dir.join(MODEL_FILE), tag).unwrap();
            std::fs::write(dir.join(SUMMARY_FILE), tag).unwrap();
        }
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[test]
    fn the_old_run_goes_only_when_the_new_one_is_saved() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        run(&dir, "old", true);
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let aside = set_aside(&dir).unwrap().expect("a run to set aside");
        assert!(!dir.join("train.json").exists() && !dir.join(MODEL_FILE).exists());
        assert_eq!(read(&dir.join(REPLACED_DIR), MODEL_FILE), "old");
        // The new run failed before saving: the old one comes back whole.
        run(&dir, "new", false);
        assert!(!aside.finish().unwrap());
        for name in ["train.json", MODEL_FILE, SUMMARY_FILE, "events.out.tfevents.1.host.1.depthlab"] {
            assert_eq!(read(&dir, name), "old", "{name}");
        }
        assert!(!dir.join(REPLACED_DIR).exists());
        assert_eq!(read(&dir, "notes.txt"), "mine", "files that are not the run's stay");
        // The new run saved: the old one is deleted.
        let aside = set_aside(&dir).unwrap().unwrap();
        run(&dir, "new", true);
        assert!(aside.finish().unwrap());
        assert_eq!(read(&dir, MODEL_FILE), "new");
        assert!(!dir.join(REPLACED_DIR).exists());
        assert!(set_aside(&tmp.path().join("absent")).unwrap().is_none());
    }

    #[test]
    fn what_a_killed_overwrite_left_is_resolved_next_time() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        run(&dir, "old", true);
        // Killed while the new run trained: the old one is put back first.
        std::mem::forget(set_aside(&dir).unwrap());
        run(&dir, "half", false);
        let aside = set_aside(&dir).unwrap().unwrap();
        assert_eq!(read(&dir.join(REPLACED_DIR), "train.json"), "old");
        assert_eq!(read(&dir.join(REPLACED_DIR), MODEL_FILE), "old");
        assert!(!aside.finish().unwrap());
        // Killed after the new run finished: the new one stands.
        std::mem::forget(set_aside(&dir).unwrap());
        run(&dir, "new", true);
        assert!(set_aside(&dir).unwrap().is_some());
        assert_eq!(read(&dir.join(REPLACED_DIR), MODEL_FILE), "new");
    }
}
