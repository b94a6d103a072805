//! Folders of images: one subfolder per class (or `train/` and `test/`, each
//! holding one subfolder per class), any format the `image` crate decodes,
//! resized to the chosen size.

use std::path::{Path, PathBuf};

use super::{DataError, Split};

/// Largest image side accepted, and the most memory a decoder may use.
const MAX_SIDE: u32 = 16_384;
const MAX_ALLOC_BYTES: u64 = 512 * 1024 * 1024;
/// Largest side images are resized to for training (`folder:DIR@CxHxW`).
pub const MAX_EXAMPLE_SIDE: usize = 1024;

pub struct LoadedFolder {
    pub class_names: Vec<String>,
    pub train: Split,
    pub test: Split,
}

/// Bytes that do not decode as an image within the size limits.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Guess(std::io::Error),
    #[error("not an image (the format is not recognised: use PNG, JPEG, BMP, GIF, WebP, TIFF, …)")]
    Unrecognised,
    #[error("cannot decode the image: the JPEG data ends before its end-of-image marker (is the file truncated?)")]
    TruncatedJpeg,
    #[error("the image is too large: at most {MAX_SIDE} pixels a side and {mib} MiB decoded ({0})", mib = MAX_ALLOC_BYTES / (1024 * 1024))]
    TooLarge(image::ImageError),
    #[error("cannot decode the image: {0}")]
    Decode(image::ImageError),
}

/// Decodes an image file under size limits, with an error that names the file.
pub fn decode_image_file(path: &Path) -> Result<image::DynamicImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::new(path, e.to_string()))?;
    decode_image_bytes(&bytes).map_err(|message| DataError::new(path, message))
}

/// Decodes an image held in memory under size limits; a cut-off file is an
/// error (some decoders would fill the missing part in silently).
pub fn decode_image_bytes(bytes: &[u8]) -> Result<image::DynamicImage, ImageError> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().map_err(ImageError::Guess)?;
    let Some(format) = reader.format() else {
        return Err(ImageError::Unrecognised);
    };
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::TruncatedJpeg);
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooLarge(e),
        e => ImageError::Decode(e),
    })
}

/// Whether a JPEG stream reaches its end-of-image marker (`FF D9`) after
/// its last start-of-scan (`FF DA`): entropy-coded data cannot contain
/// `FF D9`, so a file cut inside a scan lacks it.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let marker = |m: u8| bytes.windows(2).rposition(|w| w[0] == 0xFF && w[1] == m);
    match (marker(0xDA), marker(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        _ => false,
    }
}

/// Converts a decoded image to the model's input bytes (`C x H x W`): resized
/// to `height x width`, grey (1 channel) or RGB (3 channels).
pub fn image_to_example(image: &image::DynamicImage, channels: usize, height: usize, width: usize) -> Vec<u8> {
    let resized = image.resize_exact(width as u32, height as u32, image::imageops::FilterType::Triangle);
    if channels == 1 {
        resized.to_luma8().into_raw()
    } else {
        let rgb = resized.to_rgb8();
        let plane = height * width;
        let mut out = vec![0u8; 3 * plane];
        for (i, pixel) in rgb.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = pixel[c];
            }
        }
        out
    }
}

fn subfolders(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::new(dir, e.to_string()))?;
    let mut folders: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    folders.sort();
    Ok(folders)
}

fn files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::new(dir, e.to_string()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    Ok(files)
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Loads a folder dataset. With `train/` and `test/` subfolders they are the
/// splits; otherwise every sixth image of each class (in name order) is held
/// out for testing.
pub fn load_dir(dir: &Path, channels: usize, height: usize, width: usize) -> Result<LoadedFolder, DataError> {
    if !dir.is_dir() {
        return Err(DataError::new(dir, "no such folder"));
    }
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    let presplit = train_dir.is_dir() && test_dir.is_dir();
    let class_root = if presplit { train_dir.clone() } else { dir.to_path_buf() };
    let classes = subfolders(&class_root)?;
    if classes.len() < 2 {
        return Err(DataError::new(
            &class_root,
            format!("{} class folder(s): a folder dataset needs one subfolder per class, at least 2", classes.len()),
        ));
    }
    let class_names: Vec<String> = classes.iter().map(|p| name_of(p)).collect();
    let mut train = Split::default();
    let mut test = Split::default();
    for (label, class_dir) in classes.iter().enumerate() {
        let class_files = files(class_dir)?;
        if class_files.is_empty() {
            return Err(DataError::new(class_dir, "empty class folder: every class needs at least one image"));
        }
        let test_files = if presplit {
            let test_class = test_dir.join(&class_names[label]);
            if !test_class.is_dir() {
                return Err(DataError::new(&test_class, "missing: test/ needs the same class folders as train/"));
            }
            files(&test_class)?
        } else {
            Vec::new()
        };
        for (i, file) in class_files.iter().enumerate() {
            let image = decode_image_file(file)?;
            let split = if !presplit && i % 6 == 5 { &mut test } else { &mut train };
            split.images.extend(image_to_example(&image, channels, height, width));
            split.labels.push(label as u16);
        }
        for file in &test_files {
            let image = decode_image_file(file)?;
            test.images.extend(image_to_example(&image, channels, height, width));
            test.labels.push(label as u16);
        }
    }
    if test.is_empty() {
        return Err(DataError::new(dir, "no test images: put at least 6 images in a class folder, or use train/ and test/"));
    }
    Ok(LoadedFolder { class_names, train, test })
}
