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
