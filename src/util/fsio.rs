//! Files written so that a crash never leaves half a file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file or folder operation that failed, naming the path: `PATH: ERROR`
/// (or `PATH: cannot remove: ERROR`, …).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot remove: {source}", .path.display())]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot move it to {}: {source}", .path.display(), .to.display())]
    Move { path: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("{}: {source}", .path.display())]
    Encode { path: PathBuf, source: image::ImageError },
}

impl FileError {
    /// For `map_err`: an I/O error on `path`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
        move |source| FileError::Io { path: path.to_path_buf(), source }
    }

    /// For `map_err`: `path` could not be removed.
    pub fn remove(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
        move |source| FileError::Remove { path: path.to_path_buf(), source }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced,
/// then renamed over the target (a set of one, [`write_set`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map_or(Path::new("file"), Path::new);
    write_set(dir, &[(name, bytes)])
}

/// Encodes `image` as a PNG and writes it atomically ([`write_atomic`]):
/// a full disk leaves the file that was there, never half a picture.
pub fn write_png<P, C>(path: &Path, image: &image::ImageBuffer<P, C>) -> Result<(), FileError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    write_atomic(path, &png_bytes(path, image)?).map_err(FileError::io(path))
}

/// `image` encoded as a PNG (`path` names it in errors).
pub fn png_bytes<P, C>(path: &Path, image: &image::ImageBuffer<P, C>) -> Result<Vec<u8>, FileError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).map_err(|source| FileError::Encode { path: path.to_path_buf(), source })?;
    Ok(bytes.into_inner())
}

/// Writes a set of files into `dir` all or nothing: every file to its
/// scratch file first, synced; only when all are written are they renamed
/// into place. A full disk part-way removes the scratch files and leaves
/// the set that was there whole (never a new JSON beside an old picture).
pub fn write_set<N: AsRef<Path>>(dir: &Path, files: &[(N, &[u8])]) -> std::io::Result<()> {
    let scratch = |name: &Path| dir.join(format!(".{}.tmp-{}", name.display(), std::process::id()));
    let mut written = Vec::new();
    for (name, bytes) in files {
        let tmp = scratch(name.as_ref());
        let result = crate::util::fault::io("write").and_then(|()| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes).and_then(|_| file.sync_all())
        });
        written.push(tmp.clone());
        if let Err(e) = result {
            // Nothing half-written stays behind (a full disk, a size limit).
            for path in &written {
                remove_if_present(path);
            }
            return Err(e);
        }
    }
    crate::util::fault::point("written");
    for ((name, _), tmp) in files.iter().zip(&written) {
        rename_durably(tmp, &dir.join(name))?;
    }
    Ok(())
}

/// Renames `from` over `to` and syncs the folder, so that the new name
/// survives a power cut as well as a kill.
pub fn rename_durably(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    let dir = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        // Some file systems cannot sync a folder; the rename itself stands.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported) => Ok(()),
        other => other,
    }
}

/// Removes a scratch file; one that is already gone is fine.
pub fn remove_if_present(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!("depthlab: cannot remove {}: {e}", path.display());
    }
}

/// Whether `name` is one of the scratch files depthlab writes before a
/// rename (`.NAME.tmp-PID`, `.model-PID.tmp.bpk` and the recorder's own
/// `.model-PID.tmp.bpk.PID-N.tmp` inside it).
pub fn is_scratch_file(name: &str) -> bool {
    name.starts_with('.') && (name.contains(".tmp-") || (name.starts_with(".model-") && name.contains(".tmp")))
}

/// Removes from `dir` the scratch files of [`write_atomic`]
/// (`.NAME.tmp-PID`) whose process is gone: what a kill in the middle of a
/// write left behind. Those of a live process (another command writing
/// there now) stay.
pub fn remove_dead_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")).and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !process_alive(pid)
        {
            remove_if_present(&entry.path());
        }
    }
}

/// Whether process `pid` is running (where that cannot be told: yes).
fn process_alive(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    return Path::new("/proc").join(pid.to_string()).exists();
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    gunzip_if_needed(raw)
}

/// Gunzips `raw` when it starts with the gzip magic bytes.
pub fn gunzip_if_needed(raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(raw.as_slice()), &mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::is_scratch_file;

    #[test]
    fn scratch_files_are_told_from_run_files() {
        for name in [".summary.json.tmp-41", ".model-41.tmp.bpk", ".model-41.tmp.bpk.41-0.tmp"] {
            assert!(is_scratch_file(name), "{name}");
        }
        for name in ["model.bpk", "summary.json", ".lock", "notes.tmp", ".model-notes"] {
            assert!(!is_scratch_file(name), "{name}");
        }
    }
}
