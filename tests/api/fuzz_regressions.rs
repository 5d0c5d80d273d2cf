//! Replays every saved fuzz input through the same entry functions the cargo-fuzz targets call
//! (`userdir::fuzzing`): the seed corpus in `fuzz/seeds/<target>/` and the inputs of past
//! crashes in `fuzz/regressions/<target>/`. No nightly toolchain and no libFuzzer needed: a
//! panic in any entry function fails this test, naming the file.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The target directories under `dir` (a missing `dir` has none), sorted.
fn target_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every file of `dir`; returns how many ran and the files that panicked.
fn replay(entry: fn(&[u8]), dir: &Path) -> (usize, Vec<String>) {
    let mut failed = Vec::new();
    let files = files(dir);
    for file in &files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    (files.len(), failed)
}

fn entry_of(dir: &Path) -> fn(&[u8]) {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    userdir::fuzzing::target(name).unwrap_or_else(|| {
        panic!(
            "{} is not named after a fuzz target (one of {:?})",
            dir.display(),
            userdir::fuzzing::TARGETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
        )
    })
}

#[test]
fn every_target_has_seeds() {
    for (name, _) in userdir::fuzzing::TARGETS {
        let dir = fuzz_dir().join("seeds").join(name);
        assert!(
            dir.is_dir() && !files(&dir).is_empty(),
            "no seeds in {}",
            dir.display()
        );
    }
}

#[test]
fn seeds_and_past_crashes_replay_without_panics() {
    let mut replayed = 0;
    let mut failed = Vec::new();
    for kind in ["seeds", "regressions"] {
        for dir in target_dirs(&fuzz_dir().join(kind)) {
            let (count, failures) = replay(entry_of(&dir), &dir);
            replayed += count;
            failed.extend(failures);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {replayed} saved fuzz inputs panic:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(replayed >= userdir::fuzzing::TARGETS.len());
}

/// The replay really notices a panicking entry function.
#[test]
fn a_panicking_entry_function_is_reported() {
    fn panics(data: &[u8]) {
        assert!(data.is_empty(), "boom");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fine"), b"").unwrap();
    std::fs::write(dir.path().join("crash"), b"x").unwrap();
    let (count, failed) = replay(panics, dir.path());
    assert_eq!(count, 2);
    assert_eq!(failed, [dir.path().join("crash").display().to_string()]);
}
