//! The floors of ARCHITECTURE.md hold: every `crate::` path in the code of
//! `src/` names a folder on a lower floor than its own (or its own folder),
//! so arrows point down only and no circle runs between folders.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Folder → floor, read from ARCHITECTURE.md's table (`| 3 | train | … |`).
fn floors(text: &str) -> BTreeMap<String, usize> {
    let mut floors = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Ok(floor) = cells[1].parse::<usize>() else { continue };
        for folder in cells[2].split(',') {
            let previous = floors.insert(folder.trim().to_string(), floor);
            assert!(previous.is_none(), "{} is on two floors in ARCHITECTURE.md", folder.trim());
        }
    }
    floors
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line: what comes before a `//` comment (doc comments and
/// comments name other modules freely; `//` inside a string is rare enough
/// in this crate that a `crate::` path after one is not missed).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    }
}

/// The folders a line of code names through `crate::folder`.
fn named_folders(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code(line);
    while let Some(at) = rest.find("crate::") {
        // `$crate::` in a macro names the defining crate the same way.
        let after = &rest[at + "crate::".len()..];
        let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            names.push(name);
        }
        rest = after;
    }
    names
}

/// Every import that runs up or sideways: (file, line number, folder named).
fn violations(src: &Path, floors: &BTreeMap<String, usize>) -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut upward = Vec::new();
    let mut unplaced = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let Some(first) = relative.components().next() else { continue };
        let folder = first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if folder == "lib" || folder == "main" {
            continue;
        }
        let Some(&own) = floors.get(&folder) else {
            unplaced.push(folder);
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for named in named_folders(line) {
                if named == folder || named == "self" {
                    continue;
                }
                match floors.get(&named) {
                    Some(&floor) if floor < own => {}
                    Some(&floor) => {
                        upward.push(format!("{}:{}: {folder} (floor {own}) imports {named} (floor {floor})", relative.display(), n + 1))
                    }
                    None => unplaced.push(named),
                }
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    (upward, unplaced)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_import_points_down_a_floor() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let floors = floors(&text);
    assert!(floors.len() >= 10, "ARCHITECTURE.md's floor table was not read: {floors:?}");
    let (upward, unplaced) = violations(&root().join("src"), &floors);
    assert!(unplaced.is_empty(), "folders of src/ without a floor in ARCHITECTURE.md: {unplaced:?}");
    assert!(upward.is_empty(), "imports that run up or sideways (see ARCHITECTURE.md):\n{}", upward.join("\n"));
}

#[test]
fn every_module_of_the_library_has_a_floor() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let floors = floors(&text);
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.trim().strip_prefix("pub mod ").and_then(|l| l.strip_suffix(';')) {
            assert!(floors.contains_key(name), "src/lib.rs declares `{name}`, which has no floor in ARCHITECTURE.md");
        }
    }
}

/// The check itself catches what it is for: an upward import in a scratch
/// tree (train naming experiment, as it once did), and a sideways one.
#[test]
fn an_upward_import_is_caught() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let floors = floors(&text);
    let scratch = std::env::temp_dir().join(format!("depthlab-architecture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("train")).unwrap();
    std::fs::create_dir_all(scratch.join("experiment")).unwrap();
    std::fs::write(
        scratch.join("train/events.rs"),
        "/// crate::experiment in a comment is fine\nuse crate::model::Network;\n    SweepRow(crate::experiment::SweepRow),\n",
    )
    .unwrap();
    std::fs::write(scratch.join("experiment/mod.rs"), "use crate::train::Event;\nuse crate::export::x; // sideways\n").unwrap();
    std::fs::write(scratch.join("kernels.rs"), "macro_rules! m { () => { $crate::kernels::simd::f() } }\n").unwrap();
    let (upward, unplaced) = violations(&scratch, &floors);
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(unplaced.is_empty(), "{unplaced:?}");
    assert_eq!(upward.len(), 2, "{upward:?}");
    assert!(
        upward[0].contains("train (floor 3) imports experiment (floor 4)")
            || upward[1].contains("train (floor 3) imports experiment (floor 4)"),
        "{upward:?}"
    );
    assert!(upward.iter().any(|v| v.contains("experiment (floor 4) imports export (floor 4)")), "{upward:?}");
}

/// A line's code with string and character literals and `//` comments
/// blanked out, so that only the braces of the code itself are counted.
/// `in_string` carries a string literal over line ends.
fn code_braces(line: &str, in_string: &mut bool) -> (usize, usize) {
    let chars: Vec<char> = line.chars().collect();
    let (mut open, mut close, mut i) = (0, 0, 0);
    while i < chars.len() {
        let c = chars[i];
        if *in_string {
            match c {
                '\\' => i += 1,
                '"' => *in_string = false,
                _ => {}
            }
        } else {
            match c {
                '"' => *in_string = true,
                '/' if chars.get(i + 1) == Some(&'/') => break,
                // A character literal ('{', '\n', '\''), not a lifetime.
                '\'' if chars.get(i + 1) == Some(&'\\') => {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                }
                '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
                '{' => open += 1,
                '}' => close += 1,
                _ => {}
            }
        }
        i += 1;
    }
    (open, close)
}

/// Functions of `text` longer than `limit` lines, as (name, first line, lines),
/// up to its tests (`#[cfg(test)]`).
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().take_while(|l| l.trim() != "#[cfg(test)]").collect();
    let mut long = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let after_qualifiers = ["pub(crate) ", "pub(super) ", "pub ", "const ", "unsafe ", "async ", "extern \"C\" "]
            .iter()
            .fold(trimmed, |t, q| t.strip_prefix(q).unwrap_or(t));
        if let Some(rest) = after_qualifiers.strip_prefix("fn ") {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let (mut depth, mut started, mut in_string, mut j) = (0usize, false, false, i);
            while j < lines.len() {
                let (open, close) = code_braces(lines[j], &mut in_string);
                depth += open;
                started |= open > 0;
                depth = depth.saturating_sub(close);
                if (started && depth == 0) || (!started && code(lines[j]).trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            if j + 1 - i > limit {
                long.push((name, i + 1, j + 1 - i));
            }
        }
        i += 1;
    }
    long
}

/// The house rule of ARCHITECTURE.md: no function of `src/` over 100 lines
/// (tests aside): a longer one is split by job.
#[test]
fn no_function_runs_over_a_hundred_lines() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut long = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        if relative.contains("/tests/") || relative.ends_with("/tests.rs") {
            continue;
        }
        for (name, line, length) in long_functions(&std::fs::read_to_string(&file).unwrap(), 100) {
            long.push(format!("{relative}:{line}: fn {name} is {length} lines"));
        }
    }
    assert!(long.is_empty(), "functions over 100 lines (split them by job):\n{}", long.join("\n"));
}

/// The length check counts a function's lines whatever braces its strings,
/// characters and comments hold, and stops at the tests.
#[test]
fn a_long_function_is_measured_whatever_its_strings_hold() {
    let mut text = String::from("pub(super) fn long(x: u32) -> String {\n    let s = \"}}}\";\n    let c = '}';\n    // }\n");
    for _ in 0..100 {
        text.push_str("    let _ = format!(\"{x}\");\n");
    }
    text.push_str(
        "    s.to_string()\n}\n\nfn short<'a>(v: &'a str) -> &'a str {\n    v\n}\n\n#[cfg(test)]\nmod tests {\n    fn in_tests() {\n",
    );
    for _ in 0..200 {
        text.push_str("        let _ = 1;\n");
    }
    text.push_str("    }\n}\n");
    assert_eq!(long_functions(&text, 100), vec![("long".to_string(), 1, 106)]);
    assert!(long_functions(&text, 106).is_empty());
}
