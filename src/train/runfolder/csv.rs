//! The CSV files of a run folder as depthlab writes and reads them:
//! quoting and splitting fields, and reading rows back leniently (a last
//! line cut short by a kill, or a damaged row, never makes a run unreadable).

use std::path::Path;

use super::error::{RunFolderError, file_error};

/// Quotes a CSV field when it needs it.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// Splits a CSV line, honouring double quotes.
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Reads the data rows of a CSV file with the expected header. A last line
/// cut short by a kill is ignored; other rows with the wrong number of
/// columns are skipped and counted in `warnings`.
pub(super) fn read_csv(path: &Path, header: &str, warnings: &mut Vec<String>) -> Result<Vec<Vec<String>>, RunFolderError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_error(path, e)),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == header => {}
        Some(h) => return Err(file_error(path, format!("unexpected header '{h}', expected '{header}'"))),
        None => return Ok(Vec::new()),
    }
    let columns = header.split(',').count();
    let complete = text.ends_with('\n');
    let rows: Vec<&str> = lines.collect();
    let last = rows.len();
    let (good, bad): (Vec<Vec<String>>, Vec<Vec<String>>) =
        rows.into_iter().enumerate().filter(|(i, _)| complete || i + 1 < last).map(|(_, l)| split_csv(l)).partition(|f| f.len() == columns);
    if !bad.is_empty() {
        warnings.push(format!("{}: skipped {} row(s) without {columns} columns", path.display(), bad.len()));
    }
    Ok(good)
}

/// The rows that parse; the others are skipped with one warning naming the
/// first problem (a damaged row of a CSV never makes the run, and its
/// weights, unreadable).
pub(super) fn parse_rows<T>(
    path: &Path,
    rows: Vec<Vec<String>>,
    warnings: &mut Vec<String>,
    parse_row: impl Fn(&[String]) -> Result<T, RunFolderError>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(rows.len());
    let (mut skipped, mut first) = (0, None);
    for row in &rows {
        match parse_row(row) {
            Ok(value) => parsed.push(value),
            Err(e) => {
                skipped += 1;
                first.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first {
        warnings.push(format!("{}: skipped {skipped} row(s) that do not parse (first: {e})", path.display()));
    }
    parsed
}

pub(super) fn parse<T: std::str::FromStr>(path: &Path, field: &str) -> Result<T, RunFolderError> {
    field.trim().parse::<T>().map_err(|_| file_error(path, format!("'{field}' is not a number")))
}
