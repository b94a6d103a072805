//! CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes
//! (1024 red, 1024 green, 1024 blue, row by row).

use std::path::Path;

use super::{DataError, Split};

const RECORD: usize = 1 + 3 * 32 * 32;

/// Loads `data_batch_1..5.bin` and `test_batch.bin` from `dir`.
pub fn load_dir(dir: &Path) -> Result<(Split, Split), DataError> {
    if !dir.is_dir() {
        return Err(DataError::new(dir, "no such folder (expected cifar-10-batches-bin/)"));
    }
    let mut train = Split::default();
    for i in 1..=5 {
        read_batch(&dir.join(format!("data_batch_{i}.bin")), &mut train)?;
    }
    let mut test = Split::default();
    read_batch(&dir.join("test_batch.bin"), &mut test)?;
    Ok((train, test))
}

/// Appends the records of one batch file to `split`.
pub fn read_batch(path: &Path, split: &mut Split) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::new(path, e.to_string()))?;
    if bytes.is_empty() {
        return Err(DataError::new(path, "empty file"));
    }
    if bytes.len() % RECORD != 0 {
        return Err(DataError::new(
            path,
            format!(
                "truncated: {} bytes is not a whole number of {RECORD}-byte records ({} whole records and {} bytes left over)",
                bytes.len(),
                bytes.len() / RECORD,
                bytes.len() % RECORD
            ),
        ));
    }
    let mut images = Vec::with_capacity(bytes.len());
    let mut labels = Vec::with_capacity(bytes.len() / RECORD);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        if record[0] > 9 {
            return Err(DataError::new(path, format!("label {} of record {i} is out of range (0..9)", record[0])));
        }
        labels.push(u16::from(record[0]));
        images.extend_from_slice(&record[1..]);
    }
    split.images.extend(images);
    split.labels.extend(labels);
    Ok(())
}
