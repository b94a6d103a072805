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
