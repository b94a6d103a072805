//! The Why it works tab: each analysis run on a plain net and its
//! residual twin side by side, and a long one cancelled.

use super::*;

/// The Why tab runs each analysis on a plain net and its residual twin side
/// by side, with a progress bar, and Cancel stops one.
#[test]
fn the_why_tab_runs_each_analysis_on_two_runs_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    for preset in ["plain-8", "resnet-8"] {
        train_digits(preset, &dir.path().join(preset), 1, Some(20));
    }
    let mut h = harness_with(settings(dir.path()));
    h.run();
    for preset in ["plain-8", "resnet-8"] {
        h.input_mut().dropped_files.push(Arc::new(Dropped(dir.path().join(preset))));
        wait_until(&mut h, "the run folder", |app| app.runs.runs.iter().any(|r| r.name == preset));
    }
    choose_tab(&mut h, "Why it works");
    h.get_by_label_contains("Veit, Wilber & Belongie (2016)");
    let ids: Vec<RunId> = h.state().runs.runs.iter().map(|r| r.id).collect();
    h.state_mut().why.runs = [Some(ids[0]), Some(ids[1])];
    h.state_mut().why.lesion_examples = 100;
    h.state_mut().why.path_samples = 2;
    h.state_mut().why.landscape_grid = 5;
    h.state_mut().why.landscape_subset = 64;
    h.run();
    for (kind, words) in [
        ("Lesion study", "median rise"),
        ("Gradient by path length", "carry 90% of the gradient"),
        ("Loss landscape", "at the trained weights"),
    ] {
        // The radio button (the heading repeats the name).
        h.get_by_role_and_label(egui::accesskit::Role::RadioButton, kind).click();
        h.run();
        h.get_by_label("Run analysis").click();
        h.run();
        wait_until(&mut h, kind, |app| !app.why.is_running());
        if kind == "Gradient by path length" {
            // A plain net has one path through every layer: the side says so.
            let error = h.state().why.errors[0].clone().unwrap_or_default();
            assert!(error.contains("no residual blocks"), "{error}");
            assert!(h.state().why.errors[1].is_none());
            assert_eq!(h.get_all_by_label_contains(words).count(), 1, "{kind}: the residual side");
        } else {
            assert_eq!(h.state().why.errors, [None, None], "{kind}");
            assert_eq!(h.get_all_by_label_contains(words).count(), 2, "{kind}: both sides");
        }
    }
    // Another analysis chosen: the landscapes are not shown under its
    // heading, and come back when the landscape is chosen again.
    h.get_by_role_and_label(egui::accesskit::Role::RadioButton, "Lesion study").click();
    h.run();
    assert_eq!(h.query_all_by_label_contains("at the trained weights").count(), 0);
    assert_eq!(h.get_all_by_label_contains("it holds a loss landscape of").count(), 2);
    h.get_by_role_and_label(egui::accesskit::Role::RadioButton, "Loss landscape").click();
    h.run();
    assert_eq!(h.get_all_by_label_contains("at the trained weights").count(), 2);
    // A large landscape, cancelled.
    h.state_mut().why.landscape_grid = 101;
    h.state_mut().why.landscape_subset = 1400;
    h.run();
    h.get_by_label("Run analysis").click();
    h.run();
    assert!(h.state().why.is_running());
    h.get_by_label("Cancel").click();
    wait_until(&mut h, "the cancel", |app| !app.why.is_running());
    assert_eq!(h.state().why.errors, [Some("cancelled".to_string()), Some("cancelled".to_string())]);
}
