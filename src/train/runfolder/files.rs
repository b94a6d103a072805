//! Which files in a folder are a run's, removing them to make room for a
//! new run, the scratch files a killed writer leaves, and the checksum
//! of the weights.

use std::fs::File;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{RUN_FILES, RunFolderError};
use crate::train::tensorboard;
use crate::util::fsio::{FileError, is_scratch_file};
use crate::util::lock::FolderLock;

/// The SHA-256 of a file's bytes, in lower-case hex (as `sha256sum` prints it).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Removes the run in `dir` (the files a run writes; anything else stays)
/// so a new run can be written there; refused while a run is writing it.
pub fn clear_run(dir: &Path) -> Result<(), RunFolderError> {
    if !dir.exists() {
        return Ok(());
    }
    let lock = FolderLock::acquire(dir)?;
    for name in run_file_names(dir)? {
        let path = dir.join(name);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(FileError::remove(&path)(e).into());
        }
    }
    remove_scratch_files(dir);
    drop(lock);
    Ok(())
}

/// The names of the run's files present in `dir`: the fixed ones
/// ([`RUN_FILES`]) and its TensorBoard event files; anything else in the
/// folder is not the run's.
pub fn run_file_names(dir: &Path) -> Result<Vec<String>, FileError> {
    let mut names: Vec<String> = RUN_FILES.iter().filter(|n| dir.join(n).exists()).map(|n| n.to_string()).collect();
    for entry in std::fs::read_dir(dir).map_err(FileError::io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if tensorboard::is_event_file(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes scratch files a killed writer left (only called when no live
/// writer can own them). A folder that cannot be changed (a read-only copy
/// of a run) keeps them: they are never read, so reading goes on.
pub(super) fn remove_scratch_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if is_scratch_file(&entry.file_name().to_string_lossy())
            && let Err(e) = std::fs::remove_file(entry.path())
            && std::env::var_os("DEPTHLAB_DEBUG").is_some()
        {
            eprintln!("depthlab: cannot remove {}: {e}", entry.path().display());
        }
    }
}
