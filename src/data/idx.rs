//! IDX files (MNIST, Fashion-MNIST), raw or gzipped.

use std::path::{Path, PathBuf};

use super::{DataError, Split};
use crate::util::fsio::gunzip_if_needed;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

static FASHION_MINI: [(&str, &[u8]); 4] = [
    ("train-images-idx3-ubyte.gz", include_bytes!("../../assets/fashion-mini/train-images-idx3-ubyte.gz")),
    ("train-labels-idx1-ubyte.gz", include_bytes!("../../assets/fashion-mini/train-labels-idx1-ubyte.gz")),
    ("t10k-images-idx3-ubyte.gz", include_bytes!("../../assets/fashion-mini/t10k-images-idx3-ubyte.gz")),
    ("t10k-labels-idx1-ubyte.gz", include_bytes!("../../assets/fashion-mini/t10k-labels-idx1-ubyte.gz")),
];

/// The embedded `fashion-mini` (train, test, height, width).
pub fn embedded_fashion_mini() -> Result<(Split, Split, usize, usize), DataError> {
    let file = |i: usize| -> Result<(String, Vec<u8>), DataError> {
        let (name, bytes) = FASHION_MINI[i];
        let name = format!("assets/fashion-mini/{name}");
        let bytes = gunzip_if_needed(bytes.to_vec()).map_err(|e| DataError::new(&name, format!("not valid gzip: {e}")))?;
        Ok((name, bytes))
    };
    let (train, h, w) = split_from(file(0)?, file(1)?, 10)?;
    let (test, h2, w2) = split_from(file(2)?, file(3)?, 10)?;
    check_same_size(FASHION_MINI[2].0, (h, w), (h2, w2))?;
    Ok((train, test, h, w))
}

/// Loads the four IDX files of `dir` (`train-images-idx3-ubyte[.gz]`, …).
pub fn load_dir(dir: &Path, classes: usize) -> Result<(Split, Split, usize, usize), DataError> {
    if !dir.is_dir() {
        return Err(DataError::new(dir, "no such folder"));
    }
    let read = |stem: &str| -> Result<(String, Vec<u8>), DataError> {
        let path = find(dir, stem)?;
        let bytes = std::fs::read(&path).map_err(|e| DataError::new(&path, e.to_string()))?;
        let bytes = gunzip_if_needed(bytes).map_err(|e| DataError::new(&path, format!("not valid gzip: {e}")))?;
        Ok((path.display().to_string(), bytes))
    };
    let (train, h, w) = split_from(read("train-images-idx3-ubyte")?, read("train-labels-idx1-ubyte")?, classes)?;
    let (test, h2, w2) = split_from(read("t10k-images-idx3-ubyte")?, read("t10k-labels-idx1-ubyte")?, classes)?;
    check_same_size(&find(dir, "t10k-images-idx3-ubyte")?.display().to_string(), (h, w), (h2, w2))?;
    Ok((train, test, h, w))
}

fn check_same_size(name: &str, train: (usize, usize), test: (usize, usize)) -> Result<(), DataError> {
    if train != test {
        return Err(DataError::new(name, format!("test images are {}x{} but training images are {}x{}", test.0, test.1, train.0, train.1)));
    }
    Ok(())
}

/// Finds `stem`, `stem.gz` or the `stem` with a dot instead of the last dash
/// (`train-images.idx3-ubyte`, as some mirrors name them).
fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for name in [stem.to_string(), format!("{stem}.gz"), dotted.clone(), format!("{dotted}.gz")] {
        let path = dir.join(&name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(DataError::new(
        dir.join(format!("{stem}[.gz]")),
        "missing: an IDX folder needs train-images, train-labels, t10k-images and t10k-labels",
    ))
}

fn header(name: &str, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>, DataError> {
    let header_len = 4 + 4 * dims;
    if bytes.len() < header_len {
        return Err(DataError::new(name, format!("truncated: {} bytes, shorter than the {header_len}-byte IDX header", bytes.len())));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(DataError::new(
            name,
            format!(
                "wrong magic number 0x{found:08x}, expected 0x{magic:08x} ({})",
                if magic == IMAGES_MAGIC { "IDX images" } else { "IDX labels" }
            ),
        ));
    }
    let sizes: Vec<usize> =
        (0..dims).map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize).collect();
    // Checked: a header of 4 x 2^31 x 2^31 must not wrap to a small size.
    let expected = sizes.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).and_then(|n| n.checked_add(header_len));
    let Some(expected) = expected else {
        return Err(DataError::new(name, format!("its header promises {sizes:?} values, more than can be addressed")));
    };
    if bytes.len() < expected {
        return Err(DataError::new(name, format!("truncated: {} bytes, but its header promises {expected} ({:?})", bytes.len(), sizes)));
    }
    if bytes.len() > expected {
        return Err(DataError::new(name, format!("{} bytes after the data its header describes", bytes.len() - expected)));
    }
    Ok(sizes)
}

/// Parses an images file and a labels file into a split.
pub fn split_from(images: (String, Vec<u8>), labels: (String, Vec<u8>), classes: usize) -> Result<(Split, usize, usize), DataError> {
    let (image_name, image_bytes) = images;
    let (label_name, label_bytes) = labels;
    let dims = header(&image_name, &image_bytes, IMAGES_MAGIC, 3)?;
    let (n, h, w) = (dims[0], dims[1], dims[2]);
    if h == 0 || w == 0 {
        return Err(DataError::new(&image_name, format!("images of size {h}x{w}")));
    }
    let label_dims = header(&label_name, &label_bytes, LABELS_MAGIC, 1)?;
    if label_dims[0] != n {
        return Err(DataError::new(&label_name, format!("{} labels for {n} images in {image_name}", label_dims[0])));
    }
    let labels_raw = &label_bytes[8..];
    if let Some((i, &bad)) = labels_raw.iter().enumerate().find(|(_, l)| usize::from(**l) >= classes) {
        return Err(DataError::new(
            &label_name,
            format!("label {bad} of image {i} is out of range (there are {classes} classes, numbered from 0)"),
        ));
    }
    let split = Split { images: image_bytes[16..].to_vec(), labels: labels_raw.iter().map(|&l| u16::from(l)).collect() };
    Ok((split, h, w))
}
