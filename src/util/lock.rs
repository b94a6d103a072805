//! One writer per run folder: an exclusive OS file lock (`flock`) on the
//! folder's `.lock` file, held for as long as the run writes and released
//! by the OS when the process exits or dies, however it dies. Readers ask
//! whether a lock is held to tell a run that is still going from one whose
//! process was killed.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// Why a folder's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    File(#[from] crate::util::fsio::FileError),
    #[error("{}: cannot lock: {source}", .path.display())]
    Lock { path: PathBuf, source: std::io::Error },
    /// Another process writes a run there.
    #[error("{}: {holder} is writing a run in this folder", .dir.display())]
    Held { dir: PathBuf, holder: String },
}

/// An exclusive lock on a folder, released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    // Held open: closing the file releases the lock.
    _file: File,
    pub path: PathBuf,
}

/// Whether the lock file `file` is locked by someone, trying with `op`.
#[cfg(unix)]
fn try_flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor this `File` owns and keeps open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock { Ok(false) } else { Err(err) }
}

#[cfg(not(unix))]
fn try_flock(_file: &File, _op: i32) -> std::io::Result<bool> {
    Ok(true)
}

impl FolderLock {
    /// Takes the folder's lock, creating the folder when needed, or fails at
    /// once saying which process holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock, LockError> {
        use crate::util::fsio::FileError;
        std::fs::create_dir_all(dir).map_err(FileError::io(dir))?;
        let path = dir.join(LOCK_FILE);
        let mut file =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(FileError::io(&path))?;
        #[cfg(unix)]
        let exclusive = libc::LOCK_EX;
        #[cfg(not(unix))]
        let exclusive = 0;
        if !try_flock(&file, exclusive).map_err(|source| LockError::Lock { path: path.clone(), source })? {
            let holder = read_pid(&mut file).map_or_else(|| "another process".to_string(), |pid| format!("process {pid}"));
            return Err(LockError::Held { dir: dir.to_path_buf(), holder });
        }
        // Record who holds it, for the message above.
        let written =
            file.set_len(0).and_then(|_| file.rewind()).and_then(|_| write!(file, "{}", std::process::id())).and_then(|_| file.flush());
        if let Err(e) = written {
            return Err(FileError::io(&path)(e).into());
        }
        Ok(FolderLock { _file: file, path })
    }

    /// Whether some process holds `dir`'s lock now (a folder without a lock
    /// file has no writer).
    pub fn is_held(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
            return false;
        };
        #[cfg(unix)]
        let shared = libc::LOCK_SH;
        #[cfg(not(unix))]
        let shared = 0;
        // Taking a shared lock succeeds only when nobody writes; it is
        // released again when `file` closes.
        matches!(try_flock(&file, shared), Ok(false))
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!FolderLock::is_held(dir.path()));
        let first = FolderLock::acquire(dir.path()).unwrap();
        assert!(FolderLock::is_held(dir.path()));
        let err = FolderLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("process {}", std::process::id())) && err.contains("is writing a run"), "{err}");
        drop(first);
        assert!(!FolderLock::is_held(dir.path()));
        assert!(FolderLock::acquire(dir.path()).is_ok());
    }
}
