//! Tabular data in the window: a CSV file dropped on it becomes the
//! training data, the Train tab shows its file, label column and test
//! file, the builder takes one input per feature, and a net trains on it.

use super::*;

#[test]
fn a_csv_file_dropped_on_the_window_becomes_the_data_and_trains() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("table.csv");
    let mut text = String::from("x,y,z,kind\n");
    for i in 0..200 {
        let (x, y) = ((i % 17) as f32 / 4.0, (i % 13) as f32 / 3.0);
        text.push_str(&format!("{x},{y},{},{}\n", x - y, if x > y { "above" } else { "below" }));
    }
    std::fs::write(&csv, text).unwrap();
    let mut state = settings(dir.path());
    state.train.epochs = 2;
    state.train.batch_size = 16;
    let mut h = harness_with(state);
    h.run();
    h.input_mut().dropped_files.push(Arc::new(Dropped(csv.clone())));
    h.run();
    let expected = crate::data::DataSpec::Csv(crate::data::csv::CsvSpec { file: csv.clone(), label: None, test: None });
    assert_eq!(h.state().state.train.data, expected);
    assert_eq!(h.state().input_info().shape, crate::arch::Shape::map(3, 1, 1), "one input per feature, from the header");
    h.state_mut().push(AppCommand::LoadPreset("plain-mlp-4".into()));
    h.run();
    choose_tab(&mut h, "Train");
    h.get_by_label("label column");
    h.get_by_label("test file");
    h.get_by_label("Start").click();
    wait_until(&mut h, "the run to finish", |app| !app.is_training() && !app.runs.runs.is_empty());
    let run = h.state().runs.runs.last().unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", h.state().message.as_ref().map(|m| &m.text));
    let folder = crate::train::runfolder::RunFolder::open(run.dir.as_deref().unwrap()).unwrap();
    let features = folder.record.dataset.features.expect("the features are recorded");
    assert_eq!(features.names, ["x", "y", "z"]);
    assert_eq!(folder.record.dataset.class_names, ["above", "below"]);
}
