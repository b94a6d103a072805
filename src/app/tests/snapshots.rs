//! The main screens against their snapshots (`tests/snapshots/`).

use super::*;

#[test]
fn the_main_screens_match_their_snapshots() {
    // The sample's absolute path depends on where the checkout is.
    let mut h = harness_with(Persisted { image_path: "assets/samples/sneaker.png".into(), ..Persisted::default() });
    h.run();
    h.snapshot("builder");
    choose_tab(&mut h, "Train");
    h.snapshot("train-empty");
    choose_tab(&mut h, "Depth sweep");
    h.snapshot("sweep-empty");
    choose_tab(&mut h, "Classify");
    h.snapshot("classify-empty");
    h.get_by_label("View").click();
    h.run();
    h.get_by_label("Light theme").click();
    h.run();
    choose_tab(&mut h, "Build");
    h.snapshot("builder-light");
}

/// Presentation mode (F11) at 200 % on a 1280 × 720 projector: the
/// settings panels step aside and every tab keeps its content in view.
#[test]
fn presentation_mode_at_200_percent_on_1280_by_720() {
    let state = Persisted { image_path: "assets/samples/sneaker.png".into(), ..Persisted::default() };
    let mut h = Harness::builder()
        .with_size(Vec2::new(1280.0, 720.0))
        .with_max_steps(200)
        .build_eframe(move |cc| DepthLabApp::new(cc, AppOptions { persisted: Some(state), ..AppOptions::headless() }));
    h.run();
    h.key_press(egui::Key::F11);
    h.run();
    assert!(h.state().state.present);
    assert_eq!(h.ctx.zoom_factor(), crate::app::present::DEFAULT_ZOOM);
    // The settings panels are gone: Train's Start button lives there.
    choose_tab(&mut h, "Train");
    assert!(h.query_by_label("Start").is_none(), "the Train tab's settings step aside");
    h.snapshot("present-train");
    choose_tab(&mut h, "Lessons");
    h.get_all_by_label("Start this lesson").next().expect("a lesson").click();
    h.run();
    h.get_by_label_contains("Step 1 of 2");
    h.snapshot("present-lesson");
    h.key_press(egui::Key::F11);
    h.run();
    assert!(!h.state().state.present);
    assert_eq!(h.ctx.zoom_factor(), 1.0, "back to the zoom before presenting");
}
