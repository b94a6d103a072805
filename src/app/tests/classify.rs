//! The Classify tab: a run folder dropped on the window classifies an
//! image, every error path ends the wait, and File → Export writes the run
//! for PyTorch.

use super::*;

#[test]
fn a_run_folder_dropped_on_the_window_loads_and_classifies_an_image() {
    let dir = tempfile::tempdir().unwrap();
    // A small trained run on the embedded digits.
    let run_dir = dir.path().join("digits-run");
    train_digits("resnet-8", &run_dir, 2, None);
    let data = crate::data::Dataset::load(&crate::data::DataSpec::Digits).unwrap();
    // A test digit, written as a PNG.
    let index = 7;
    let pixels = &data.test.images[index * 64..(index + 1) * 64];
    let image = image::GrayImage::from_raw(8, 8, pixels.to_vec()).unwrap();
    let image = image::imageops::resize(&image, 32, 32, image::imageops::FilterType::Nearest);
    let png = dir.path().join("digit.png");
    image.save(&png).unwrap();

    let mut h = harness_with(settings(dir.path()));
    h.run();
    h.input_mut().dropped_files.push(Arc::new(Dropped(run_dir.clone())));
    wait_until(&mut h, "the run folder", |app| app.runs.runs.iter().any(|r| r.dir.as_deref() == Some(run_dir.as_path())));
    let run = h.state().runs.runs.last().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(!run.steps.is_empty() && !run.gradients.is_empty());

    choose_tab(&mut h, "Classify");
    h.state_mut().state.image_path = png.display().to_string();
    h.get_by_label("Classify image").click();
    wait_until(&mut h, "the classification", |app| app.classify.result.is_some() || app.message.as_ref().is_some_and(|m| m.error));
    let predictions = h.state().classify.result.as_ref().expect("a result").predictions.clone();
    assert_eq!(predictions.len(), 10);
    let top: f32 = predictions.iter().take(5).map(|p| p.probability).sum();
    assert!(top > 0.5 && top <= 1.0001);
    h.run();
    h.get_by_label("top 5");
    h.get_by_label(&predictions[0].class);

    // A file that is not an image gives a clear message.
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, "not an image").unwrap();
    h.input_mut().dropped_files.push(Arc::new(Dropped(bad)));
    wait_until(&mut h, "the error", |app| app.message.as_ref().is_some_and(|m| m.error));
    let message = h.state().message.as_ref().unwrap().text.clone();
    assert!(message.contains("notes.txt: not an image"), "{message}");
    assert!(!h.state().classify.busy && h.state().classify.result.is_none(), "the wait ends and the old result goes");

    // What was done to the image is said: the 32x32 digit was resized to 8x8.
    let classify = |h: &mut Harness<'static, DepthLabApp>, path: &Path| {
        h.state_mut().state.image_path = path.display().to_string();
        h.get_by_label("Classify image").click();
        h.step();
        assert!(h.state().classify.busy, "the click starts a classification");
        wait_until(h, "the classification to end", |app| !app.classify.busy);
    };
    classify(&mut h, &png);
    assert!(
        h.state().classify.error.is_none() && h.state().message.is_none(),
        "a success clears the earlier error: {:?} {:?}",
        h.state().classify.error,
        h.state().message.as_ref().map(|m| m.text.clone())
    );
    h.get_by_label_contains("resized from 32x32 to 8x8");
    // Every error path ends the wait, clears the old result, says why, and
    // leaves nothing running (the window goes idle).
    let corrupt = dir.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    for (path, words) in [(dir.path().join("missing.png"), "missing.png"), (corrupt, "cannot decode")] {
        classify(&mut h, &path);
        let app = h.state();
        assert!(app.classify.result.is_none(), "{words}");
        assert!(app.classify.error.as_deref().unwrap_or_default().contains(words), "{:?}", app.classify.error);
        assert!(!app.is_busy(), "nothing left running after {words}");
    }
    // File → Export writes the run for PyTorch under the runs folder.
    h.state_mut().runs.selected = h.state().runs.runs.last().map(|r| r.id);
    h.get_by_label("File").click();
    h.run();
    h.get_by_label("Export digits-run to PyTorch").click();
    wait_until(&mut h, "the export", |app| app.message.as_ref().is_some_and(|m| m.text.contains("export")));
    let message = h.state().message.as_ref().unwrap().text.clone();
    assert!(message.starts_with("exported digits-run to"), "{message}");
    let exported: Vec<PathBuf> = std::fs::read_dir(dir.path().join("exports")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(exported.len(), 1);
    for file in ["model.py", "weights.safetensors", "predict.py", "README.md"] {
        assert!(exported[0].join(file).is_file(), "{file} in {}", exported[0].display());
    }
    std::fs::remove_file(run_dir.join("model.bpk")).unwrap();
    classify(&mut h, &png);
    let error = h.state().classify.error.clone().unwrap_or_default();
    assert!(error.contains("saved no weights"), "{error}");
    assert!(!h.state().is_busy());
}
