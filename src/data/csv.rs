//! Tabular data from CSV files: `csv:FILE[,label=COLUMN][,test=FILE]`.
//!
//! The first line is a header naming the columns; every other line is one
//! example. The label column is the one `label=` names, else the last; its
//! values are class names (text or numbers). Every other column is a
//! numeric feature: a missing cell, `NA` or a value that is not a finite
//! number is refused, naming its line and column.
//!
//! Without `test=FILE` every fifth row (rows 5, 10, 15, …) is held out as
//! the test split, so a file sorted by class still tests every class.
//!
//! Features are kept as the lab keeps every example, as bytes: each one on
//! 256 levels between its minimum and maximum over the training rows (as
//! histogram gradient boosting bins tabular features, LightGBM's
//! `max_bin = 255`), one "channel" of a 1×1 image per feature, so
//! normalisation, batching and the networks treat them as any other data.
//! The range is stored in the run folder (`train.json`, `dataset.features`)
//! and a row to classify is scaled continuously by it (not binned, not
//! clipped), as `depthlab classify --row` and the exported `predict.py` do.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataError, Split};

/// The largest CSV file read (each of the training and test files).
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Most feature columns.
pub const MAX_FEATURES: usize = 10_000;

/// Most classes (distinct labels).
pub const MAX_CLASSES: usize = 1_000;

/// A `csv:` data spec that does not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvSpecError {
    #[error("'csv' needs a file: csv:FILE[,label=COLUMN][,test=FILE]")]
    NoFile,
    #[error("csv:{text}: '{option}' is not label=COLUMN or test=FILE (a file name with a comma cannot be given here)")]
    BadOption { text: String, option: String },
}

/// A cell (or a line of cells) that does not read as the number it must be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    #[error("missing value '{0}' (fill or drop the row: every feature needs a number)")]
    Missing(String),
    #[error("'{0}' is not a finite number")]
    NotFinite(String),
    #[error("'{0}' is not a number (features must be numeric; encode categories as numbers)")]
    NotANumber(String),
    #[error("a quoted cell is not closed (cells spanning lines are not read)")]
    UnclosedQuote,
}

/// A row to classify (`--row V1,V2,…`) that does not fit the run's features.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error(transparent)]
    Cells(#[from] CellError),
    #[error("{given} values for {features} features ({names}; the label column '{label}' is not given)")]
    Count { given: usize, features: usize, names: String, label: String },
    #[error("feature '{name}': {source}")]
    Feature { name: String, source: CellError },
}

/// Stored feature ranges (`dataset.features` in `train.json`) that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FeatureScaleError {
    #[error("{names} feature names, {minima} minima and {maxima} maxima for {features} features")]
    Counts { names: usize, minima: usize, maxima: usize, features: usize },
    #[error("feature '{name}' has the range {min} to {max}")]
    Range { name: String, min: f32, max: f32 },
}

/// The training rows' labels cannot make a classifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum ClassesError {
    #[error("the training rows hold {count} class ({names}): a classifier needs at least 2")]
    TooFew { count: usize, names: String },
    #[error("{0} distinct labels: at most {MAX_CLASSES} classes (is the label column a feature?)")]
    TooMany(usize),
}

/// A CSV data set as `--data` names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvSpec {
    pub file: PathBuf,
    /// The label column's name (default: the last column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// A separate test file with the same columns (default: every fifth row
    /// of `file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
}

impl CsvSpec {
    /// `FILE[,label=COLUMN][,test=FILE]` (what follows `csv:`).
    pub fn parse(text: &str) -> Result<CsvSpec, CsvSpecError> {
        let mut parts = text.split(',');
        let file = parts.next().unwrap_or("").trim();
        if file.is_empty() {
            return Err(CsvSpecError::NoFile);
        }
        let mut spec = CsvSpec { file: PathBuf::from(file), label: None, test: None };
        for option in parts.map(str::trim).filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("label", name)) if !name.trim().is_empty() => spec.label = Some(name.trim().to_string()),
                Some(("test", path)) if !path.trim().is_empty() => spec.test = Some(PathBuf::from(path.trim())),
                _ => return Err(CsvSpecError::BadOption { text: text.to_string(), option: option.to_string() }),
            }
        }
        Ok(spec)
    }

    /// The same spec with its files as absolute paths.
    pub fn absolute(self) -> CsvSpec {
        let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        CsvSpec { file: abs(self.file), label: self.label, test: self.test.map(abs) }
    }

    /// The number of feature columns, from the header alone (`None` when the
    /// file cannot be read or has no header). The window asks every frame:
    /// the last answer is kept while the file's modification time holds.
    pub fn peek_features(&self) -> Option<usize> {
        type Peeked = Option<(PathBuf, std::time::SystemTime, Option<usize>)>;
        static LAST: std::sync::Mutex<Peeked> = std::sync::Mutex::new(None);
        let metadata = std::fs::metadata(&self.file).ok().filter(std::fs::Metadata::is_file)?;
        let modified = metadata.modified().ok()?;
        let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((path, time, features)) = last.as_ref()
            && *path == self.file
            && *time == modified
        {
            return *features;
        }
        let read = || {
            let file = std::fs::File::open(&self.file).ok()?;
            let mut line = String::new();
            BufReader::new(file).take(16 << 20).read_line(&mut line).ok()?;
            let columns = split_line(line.trim_start_matches('\u{feff}').trim_end()).ok()?.len();
            (columns >= 2).then_some(columns - 1)
        };
        let features = read();
        *last = Some((self.file.clone(), modified, features));
        features
    }

    /// Reads the training (and test) rows: class names, the features' names
    /// and ranges, and both splits as bytes.
    pub fn load(&self) -> Result<(Vec<String>, FeatureScale, Split, Split), DataError> {
        let train_table = Table::read(&self.file)?;
        let label = match &self.label {
            Some(name) => train_table.column(name).ok_or_else(|| {
                DataError::new(&self.file, format!("no column named '{name}' (the columns are {})", train_table.header.join(", ")))
            })?,
            None => train_table.header.len() - 1,
        };
        let (train_rows, test_rows) = match &self.test {
            Some(test_file) => {
                let test_table = Table::read(test_file)?;
                if test_table.header != train_table.header {
                    return Err(DataError::new(test_file, format!("its columns differ from {}'s", self.file.display())));
                }
                (train_table.rows(&self.file, label, |_| true)?, test_table.rows(test_file, label, |_| true)?)
            }
            None => {
                let held_out = |i: usize| i % 5 == 4;
                let train = train_table.rows(&self.file, label, |i| !held_out(i))?;
                let test = train_table.rows(&self.file, label, held_out)?;
                if test.is_empty() {
                    return Err(DataError::new(
                        &self.file,
                        format!(
                            "{} rows: without test=FILE every fifth row is held out for testing, so at least 5 are needed",
                            train.len()
                        ),
                    ));
                }
                (train, test)
            }
        };
        let class_names = class_names(&train_rows).map_err(|e| DataError::new(&self.file, e))?;
        let names: Vec<String> = train_table.header.iter().enumerate().filter(|&(i, _)| i != label).map(|(_, n)| n.clone()).collect();
        let scale = FeatureScale::measure(names, train_table.header[label].clone(), &train_rows);
        let split = |rows: &[Row], file: &Path| -> Result<Split, DataError> {
            let mut split = Split { images: Vec::with_capacity(rows.len() * scale.min.len()), labels: Vec::with_capacity(rows.len()) };
            for row in rows {
                let class = class_names.iter().position(|c| *c == row.label).ok_or_else(|| {
                    DataError::new(
                        file,
                        format!(
                            "line {}: the label '{}' never appears in the training rows ({})",
                            row.line,
                            row.label,
                            class_names.join(", ")
                        ),
                    )
                })?;
                split.images.extend(row.values.iter().enumerate().map(|(f, &v)| scale.to_byte(f, v)));
                split.labels.push(class as u16);
            }
            Ok(split)
        };
        let train = split(&train_rows, &self.file)?;
        let test = split(&test_rows, self.test.as_deref().unwrap_or(&self.file))?;
        Ok((class_names, scale, train, test))
    }
}

impl std::fmt::Display for CsvSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "csv:{}", self.file.display())?;
        if let Some(label) = &self.label {
            write!(f, ",label={label}")?;
        }
        if let Some(test) = &self.test {
            write!(f, ",test={}", test.display())?;
        }
        Ok(())
    }
}

/// What the network needs to read a row of features: their names (in the
/// order the network takes them), the label column's name, and each
/// feature's range over the training rows, which maps it to 0–1 before the
/// per-channel normalisation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureScale {
    pub names: Vec<String>,
    pub label: String,
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

impl FeatureScale {
    fn measure(names: Vec<String>, label: String, rows: &[Row]) -> FeatureScale {
        let n = names.len();
        let (mut min, mut max) = (vec![f32::INFINITY; n], vec![f32::NEG_INFINITY; n]);
        for row in rows {
            for (f, &v) in row.values.iter().enumerate() {
                min[f] = min[f].min(v);
                max[f] = max[f].max(v);
            }
        }
        FeatureScale { names, label, min, max }
    }

    /// Feature `f`'s value in 0–1 of its training range (continuous; a
    /// feature constant in training reads 0 at its value).
    pub fn to_unit(&self, f: usize, v: f32) -> f32 {
        let span = self.max[f] - self.min[f];
        if span > 0.0 { (v - self.min[f]) / span } else { v - self.min[f] }
    }

    fn to_byte(&self, f: usize, v: f32) -> u8 {
        (self.to_unit(f, v).clamp(0.0, 1.0) * 255.0).round() as u8
    }

    /// Problems with the stored ranges, in words.
    pub fn check(&self, features: usize) -> Result<(), FeatureScaleError> {
        if self.names.len() != features || self.min.len() != features || self.max.len() != features {
            return Err(FeatureScaleError::Counts { names: self.names.len(), minima: self.min.len(), maxima: self.max.len(), features });
        }
        match self.min.iter().zip(&self.max).position(|(a, b)| !(a.is_finite() && b.is_finite() && a <= b)) {
            Some(f) => Err(FeatureScaleError::Range { name: self.names[f].clone(), min: self.min[f], max: self.max[f] }),
            None => Ok(()),
        }
    }

    /// A row of feature values as the network's input: scaled by the
    /// training range and normalised.
    pub fn normalised(&self, values: &[f32], normalization: &super::Normalization) -> Vec<f32> {
        values.iter().enumerate().map(|(f, &v)| (self.to_unit(f, v) - normalization.mean[f]) / normalization.std[f]).collect()
    }

    /// `V1,V2,…` (the features in order) as numbers, checked.
    pub fn parse_row(&self, text: &str) -> Result<Vec<f32>, RowError> {
        let cells = split_line(text.trim())?;
        if cells.len() != self.names.len() {
            return Err(RowError::Count {
                given: cells.len(),
                features: self.names.len(),
                names: abbreviate(&self.names),
                label: self.label.clone(),
            });
        }
        cells
            .iter()
            .zip(&self.names)
            .map(|(cell, name)| number(cell).map_err(|source| RowError::Feature { name: name.clone(), source }))
            .collect()
    }
}

/// The first few names, then how many more.
fn abbreviate(names: &[String]) -> String {
    match names.len() {
        0..=8 => names.join(", "),
        n => format!("{}, … {} more", names[..6].join(", "), n - 6),
    }
}

/// One data row: its line in the file, features and label.
struct Row {
    line: usize,
    values: Vec<f32>,
    label: String,
}

/// A CSV file split into cells.
struct Table {
    header: Vec<String>,
    /// (line number, cells) of every non-blank line after the header.
    lines: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn read(path: &Path) -> Result<Table, DataError> {
        let error = |problem: String| DataError::new(path, problem);
        // A pipe would block the open until something writes to it.
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => return Err(error("not a file (a folder, a pipe or a device): give a CSV file".into())),
            _ => {}
        }
        let file = std::fs::File::open(path).map_err(|e| error(format!("cannot open: {e}")))?;
        let size = file.metadata().map_err(|e| error(e.to_string()))?.len();
        if size > MAX_FILE_BYTES {
            return Err(error(format!(
                "{:.1} GB: CSV files up to {} GiB are read (for more, sample the rows or use a folder of images)",
                size as f64 / 1e9,
                MAX_FILE_BYTES >> 30
            )));
        }
        let mut header: Option<Vec<String>> = None;
        let mut lines = Vec::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| error(format!("line {}: {e}", i + 1)))?;
            let line = if i == 0 { line.trim_start_matches('\u{feff}').to_string() } else { line };
            if line.trim().is_empty() {
                continue;
            }
            let cells = split_line(line.trim_end_matches('\r')).map_err(|e| error(format!("line {}: {e}", i + 1)))?;
            match &header {
                None => {
                    if cells.len() < 2 {
                        return Err(error("the header names one column: a label and at least one feature are needed".into()));
                    }
                    if cells.len() - 1 > MAX_FEATURES {
                        return Err(error(format!("{} feature columns: at most {MAX_FEATURES} are read", cells.len() - 1)));
                    }
                    if cells.iter().any(String::is_empty) {
                        return Err(error("line 1: the header has a column with no name".into()));
                    }
                    header = Some(cells);
                }
                Some(h) if cells.len() != h.len() => {
                    return Err(error(format!("line {}: {} cells where the header names {} columns", i + 1, cells.len(), h.len())));
                }
                Some(_) => lines.push((i + 1, cells)),
            }
        }
        let header = header.ok_or_else(|| error("the file is empty: a header row and data rows are needed".into()))?;
        if lines.is_empty() {
            return Err(error("the file has a header and no data rows".into()));
        }
        Ok(Table { header, lines })
    }

    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// The rows whose index (0-based, among data rows) `keep` accepts.
    fn rows(&self, path: &Path, label: usize, keep: impl Fn(usize) -> bool) -> Result<Vec<Row>, DataError> {
        let mut rows = Vec::new();
        for (line, cells) in self.lines.iter().enumerate().filter(|&(i, _)| keep(i)).map(|(_, l)| l) {
            let mut values = Vec::with_capacity(cells.len() - 1);
            for (c, cell) in cells.iter().enumerate().filter(|&(c, _)| c != label) {
                let value = number(cell).map_err(|e| DataError::new(path, format!("line {line}, column '{}': {e}", self.header[c])))?;
                values.push(value);
            }
            let label_cell = cells[label].trim();
            if label_cell.is_empty() {
                return Err(DataError::new(path, format!("line {line}: the label ('{}') is missing", self.header[label])));
            }
            rows.push(Row { line: *line, values, label: label_cell.to_string() });
        }
        Ok(rows)
    }
}

/// A cell as a finite number.
fn number(cell: &str) -> Result<f32, CellError> {
    let cell = cell.trim();
    if cell.is_empty() || ["na", "nan", "n/a", "null", "none", "?"].contains(&cell.to_ascii_lowercase().as_str()) {
        return Err(CellError::Missing(cell.to_string()));
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= f64::from(f32::MAX) => Ok(v as f32),
        Ok(_) => Err(CellError::NotFinite(cell.to_string())),
        Err(_) => Err(CellError::NotANumber(cell.to_string())),
    }
}

/// The cells of one line: comma-separated, a cell in double quotes may hold
/// commas and `""` for a quote; spaces around cells are dropped.
fn split_line(line: &str) -> Result<Vec<String>, CellError> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (false, ',') => cells.push(std::mem::take(&mut cell).trim().to_string()),
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err(CellError::UnclosedQuote);
    }
    cells.push(cell.trim().to_string());
    Ok(cells)
}

/// The classes, in order: numerically when every label is a number, else
/// alphabetically.
fn class_names(rows: &[Row]) -> Result<Vec<String>, ClassesError> {
    let mut names: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    names.sort();
    names.dedup();
    if names.iter().all(|n| n.parse::<f64>().is_ok_and(f64::is_finite)) {
        names.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    }
    match names.len() {
        0 | 1 => Err(ClassesError::TooFew { count: names.len(), names: names.join(", ") }),
        n if n > MAX_CLASSES => Err(ClassesError::TooMany(n)),
        _ => Ok(names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn load(file: &Path) -> Result<(Vec<String>, FeatureScale, Split, Split), DataError> {
        CsvSpec { file: file.into(), label: None, test: None }.load()
    }

    #[test]
    fn options_parse_and_print_back() {
        let spec = CsvSpec::parse("d/iris.csv,label=species, test=d/t.csv").unwrap();
        assert_eq!(spec, CsvSpec { file: "d/iris.csv".into(), label: Some("species".into()), test: Some("d/t.csv".into()) });
        assert_eq!(spec.to_string(), "csv:d/iris.csv,label=species,test=d/t.csv");
        assert!(CsvSpec::parse("").unwrap_err().to_string().contains("needs a file"));
        assert!(CsvSpec::parse("a.csv,colour=red").unwrap_err().to_string().contains("'colour=red'"));
        assert!(CsvSpec::parse("a.csv,label=").unwrap_err().to_string().contains("label=COLUMN"));
        // Planned sweep jobs run from elsewhere: both files become absolute.
        let data: super::super::DataSpec = "csv:t.csv,label=y,test=u.csv".parse().unwrap();
        let super::super::DataSpec::Csv(abs) = data.absolute() else { panic!("still a table") };
        assert!(abs.file.is_absolute() && abs.file.ends_with("t.csv"), "{abs:?}");
        assert!(abs.test.as_ref().is_some_and(|t| t.is_absolute() && t.ends_with("u.csv")), "{abs:?}");
        assert_eq!(abs.label.as_deref(), Some("y"));
    }

    #[test]
    fn cells_split_with_quotes() {
        assert_eq!(split_line(r#"1, "a,b" ,"say ""hi""",x"#).unwrap(), vec!["1", "a,b", r#"say "hi""#, "x"]);
        assert_eq!(split_line("a,,b").unwrap(), vec!["a", "", "b"]);
        assert!(split_line(r#"1,"open"#).is_err());
    }

    #[test]
    fn rows_become_scaled_bytes_and_every_fifth_is_held_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("\u{feff}\"width\",height,kind\r\n");
        for i in 0..10 {
            text.push_str(&format!("{},{},{}\r\n", i, 100 - 10 * i, if i % 2 == 0 { "cat" } else { "dog" }));
        }
        text.push('\n');
        let (classes, scale, train, test) = load(&write(dir.path(), "a.csv", &text)).unwrap();
        assert_eq!(classes, ["cat", "dog"]);
        assert_eq!(scale.names, ["width", "height"]);
        assert_eq!(scale.label, "kind");
        // Rows 4 and 9 (0-based) are held out; the range is the training rows'.
        assert_eq!((train.len(), test.len()), (8, 2));
        assert_eq!((scale.min.clone(), scale.max.clone()), (vec![0.0, 20.0], vec![8.0, 100.0]));
        assert_eq!(&train.images[..2], &[0, 255]);
        assert_eq!(train.labels[..2], [0, 1]);
        // Row 9 (width 9, height 10) lies beyond the training range: clipped in storage.
        assert_eq!(&test.images[2..], &[255, 0]);
        assert_eq!(test.labels, [0, 1]);
        // Classification scales continuously, not clipped.
        assert_eq!(scale.to_unit(0, 9.0), 9.0 / 8.0);
    }

    #[test]
    fn numeric_labels_sort_as_numbers_and_a_label_column_is_chosen_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let text = "y,a,b\n10,1,2\n9,3,4\n2,5,6\n10,7,8\n9,9,9\n";
        let spec = CsvSpec { file: write(dir.path(), "n.csv", text), label: Some("y".into()), test: None };
        let (classes, scale, train, _) = spec.load().unwrap();
        assert_eq!(classes, ["2", "9", "10"]);
        assert_eq!(scale.names, ["a", "b"]);
        assert_eq!(train.labels, [2, 1, 0, 2]);
        let missing = CsvSpec { label: Some("z".into()), ..spec };
        assert!(missing.load().unwrap_err().to_string().contains("no column named 'z' (the columns are y, a, b)"));
    }

    #[test]
    fn bad_files_are_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let rows = |extra: &str| format!("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n{extra}\n");
        let cases = [
            ("", "the file is empty"),
            ("a,b,label\n", "a header and no data rows"),
            ("label\n1\n", "the header names one column"),
            (&rows("9,,x"), "line 6, column 'b': missing value ''"),
            (&rows("9,NA,x"), "line 6, column 'b': missing value 'NA'"),
            (&rows("9,nan,x"), "missing value 'nan'"),
            (&rows("9,inf,x"), "'inf' is not a finite number"),
            (&rows("9,1e39,x"), "'1e39' is not a finite number"),
            (&rows("9,red,x"), "'red' is not a number"),
            (&rows("9,1"), "line 6: 2 cells where the header names 3 columns"),
            (&rows("9,1,"), "line 6: the label ('label') is missing"),
            ("a,b,label\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n9,9,x\n", "1 class (x): a classifier needs at least 2"),
            ("a,label\n1,x\n2,y\n", "at least 5 are needed"),
            (&rows("9,1,\"z"), "a quoted cell is not closed"),
        ];
        for (text, expected) in cases {
            let e = load(&write(dir.path(), "bad.csv", text)).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        // A label the training rows never had, in the test file.
        let train = write(dir.path(), "train.csv", &rows(""));
        let test = write(dir.path(), "test.csv", "a,b,label\n1,2,x\n3,4,w\n");
        let e = CsvSpec { file: train.clone(), label: None, test: Some(test) }.load().unwrap_err().to_string();
        assert!(e.contains("test.csv: line 3: the label 'w' never appears in the training rows (x, y)"), "{e}");
        let other = write(dir.path(), "other.csv", "a,c,label\n1,2,x\n");
        let e = CsvSpec { file: train, label: None, test: Some(other) }.load().unwrap_err().to_string();
        assert!(e.contains("its columns differ"), "{e}");
        // Too many columns: refused from the header, before any row is read.
        let wide = (0..=MAX_FEATURES + 1).map(|i| format!("f{i}")).collect::<Vec<_>>().join(",");
        let e = load(&write(dir.path(), "wide.csv", &format!("{wide}\n"))).unwrap_err().to_string();
        assert!(e.contains(&format!("{} feature columns: at most {MAX_FEATURES}", MAX_FEATURES + 1)), "{e}");
        assert!(load(&dir.path().join("absent.csv")).unwrap_err().to_string().contains("cannot open"));
        // A folder, and a pipe (whose open would block until written to).
        assert!(load(dir.path()).unwrap_err().to_string().contains("not a file"));
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo.csv");
            let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: mkfifo reads a NUL-terminated path we own.
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
            assert!(load(&fifo).unwrap_err().to_string().contains("not a file"));
            assert_eq!(CsvSpec { file: fifo, label: None, test: None }.peek_features(), None);
        }
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.csv");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("CSV files up to 1 GiB are read"), "{e}");
    }

    #[test]
    fn rows_to_classify_are_parsed_and_checked() {
        let scale = FeatureScale { names: vec!["a".into(), "b".into()], label: "y".into(), min: vec![0.0, 10.0], max: vec![2.0, 10.0] };
        assert_eq!(scale.parse_row(" 1, 12 ").unwrap(), vec![1.0, 12.0]);
        assert!(
            scale.parse_row("1").unwrap_err().to_string().contains("1 values for 2 features (a, b; the label column 'y' is not given)")
        );
        assert!(scale.parse_row("1,x").unwrap_err().to_string().contains("feature 'b': 'x' is not a number"));
        // A feature constant in training: its offset from the value, unscaled.
        assert_eq!((scale.to_unit(0, 1.0), scale.to_unit(1, 12.0)), (0.5, 2.0));
        assert!(scale.check(2).is_ok());
        assert!(scale.check(3).is_err());
        let reversed = FeatureScale { min: vec![3.0, 10.0], ..scale };
        assert!(reversed.check(2).unwrap_err().to_string().contains("feature 'a' has the range 3 to 2"));
    }
}
