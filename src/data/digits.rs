//! scikit-learn's 1,797 8x8 handwritten digits (BSD-3), embedded.
//! Each CSV row holds 64 pixel values 0–16 and the digit.

use super::{DataError, Split};
use crate::util::fsio::gunzip_if_needed;

static DIGITS: &[u8] = include_bytes!("../../assets/digits/digits.csv.gz");
const NAME: &str = "assets/digits/digits.csv.gz";

/// Every fifth digit (in file order) is held out for testing: 1,438 train, 359 test.
pub fn embedded() -> Result<(Split, Split), DataError> {
    let text = gunzip_if_needed(DIGITS.to_vec()).map_err(|e| DataError::new(NAME, format!("not valid gzip: {e}")))?;
    let text = String::from_utf8(text).map_err(|_| DataError::new(NAME, "not UTF-8 text"))?;
    parse(&text, NAME)
}

pub fn parse(text: &str, name: &str) -> Result<(Split, Split), DataError> {
    let mut train = Split::default();
    let mut test = Split::default();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let values: Result<Vec<f32>, _> = line.split(',').map(|v| v.trim().parse::<f32>()).collect();
        let values = values.map_err(|_| DataError::new(name, format!("row {}: not a list of numbers", i + 1)))?;
        if values.len() != 65 {
            return Err(DataError::new(name, format!("row {}: {} values, expected 64 pixels and a label", i + 1, values.len())));
        }
        let label = values[64];
        if !(0.0..=9.0).contains(&label) || label.fract() != 0.0 {
            return Err(DataError::new(name, format!("row {}: label {label} is out of range (0..9)", i + 1)));
        }
        let split = if i % 5 == 4 { &mut test } else { &mut train };
        split.images.extend(values[..64].iter().map(|&v| (v.clamp(0.0, 16.0) * 255.0 / 16.0).round() as u8));
        split.labels.push(label as u16);
    }
    Ok((train, test))
}
