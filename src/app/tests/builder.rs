//! The Build tab: blocks dragged from the palette and reordered, edits
//! checked inline, undo and redo, presets and their depth control, saving
//! and loading an architecture, and a 1,202-layer net that stays usable.

use egui::{Modifiers, Pos2, Vec2};

use super::*;
use crate::arch::BlockKind;

/// Presses at `from`, moves to `to` in small steps, releases there.
fn drag(h: &mut Harness<'static, DepthLabApp>, from: Pos2, to: Pos2) {
    h.hover_at(from);
    h.step();
    h.drag_at(from);
    h.step();
    for k in 1..=10 {
        h.hover_at(from + (to - from) * (k as f32 / 10.0));
        h.step();
    }
    h.drop_at(to);
    h.step();
    h.step();
}

fn depth(h: &Harness<'static, DepthLabApp>) -> usize {
    h.state().builder.analysis.depth
}

fn params(h: &Harness<'static, DepthLabApp>) -> usize {
    h.state().builder.analysis.params
}

#[test]
fn dragging_a_residual_block_from_the_palette_updates_depth_and_parameters() {
    let mut h = harness();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-20");
    assert_eq!((depth(&h), params(&h)), (20, 269_722 - 2 * 16 * 9));
    let (before_depth, before_params) = (depth(&h), params(&h));
    let from = h.get_by_label("residual").rect().center();
    let row = h.get_by_label("block 2: residual").rect();
    // Upper half of block 2: the new block lands between the stem and stage 1.
    drag(&mut h, from, row.center() - Vec2::new(0.0, row.height() / 4.0));
    let blocks = &h.state().builder.arch.blocks;
    assert_eq!(blocks.len(), 7);
    assert!(matches!(blocks[1].kind, BlockKind::Residual { filters: 16, stride: 1, .. }));
    assert_eq!(depth(&h), before_depth + 2);
    assert_eq!(params(&h), before_params + 2 * (16 * 16 * 9 + 2 * 16));
    assert!(h.state().builder.analysis.is_valid());
    // And the totals line says so.
    h.get_by_label(&format!("depth {}", before_depth + 2));
}

#[test]
fn blocks_reorder_by_dragging_and_undo_redo_walks_the_edits() {
    let mut h = harness();
    h.run();
    let from = h.get_by_label("block 5: global avg pool").rect().center();
    let target = h.get_by_label("block 4: residual").rect();
    drag(&mut h, from, target.center() - Vec2::new(0.0, target.height() / 4.0));
    let kinds: Vec<&str> = h.state().builder.arch.blocks.iter().map(|b| b.kind.tag()).collect();
    assert_eq!(kinds, ["conv", "residual", "residual", "global_avg_pool", "residual", "classifier"]);
    // A residual block after global pooling has no feature map: the row says why.
    let error = h.state().builder.analysis.error_for(4).map(|e| e.message.clone()).unwrap();
    assert!(error.contains("needs a feature map"), "{error}");
    h.get_by_label_contains("a residual block needs a feature map");

    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::Z);
    h.run();
    assert_eq!(h.state().builder.arch.blocks[3].kind.tag(), "residual");
    assert!(h.state().builder.analysis.is_valid());
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, egui::Key::Z);
    h.run();
    assert_eq!(h.state().builder.arch.blocks[3].kind.tag(), "global_avg_pool");
    h.get_by_label("Undo").click();
    h.run();
    assert_eq!(h.state().builder.arch.blocks[3].kind.tag(), "residual");
}

#[test]
fn an_invalid_edit_shows_its_error_inline_until_fixed() {
    let mut h = harness();
    h.run();
    h.get_by_label("block 3: residual").click();
    h.run();
    assert_eq!(h.state().builder.selected, Some(2));
    // 32 → 8 filters: a stride-2 block with an option-A shortcut cannot
    // shrink 16 channels to 8.
    h.get_by_value("32").set_value_accesskit(8.0);
    h.run();
    let error = h.state().builder.analysis.error_for(2).map(|e| e.message.clone()).unwrap_or_default();
    assert!(error.contains("option A shortcut cannot reduce channels (16 → 8)"), "{error}");
    // Inline in its row, and in the inspector; the header gives no depth
    // for a net that does not fit together.
    assert_eq!(h.get_all_by_label_contains("option A shortcut cannot reduce channels").count(), 2);
    h.get_by_label("depth ?");
    // Fix it: a projection shortcut (option B) can shrink the channels.
    h.get_by_value("A: zero-pad").click();
    h.run();
    h.get_by_label("B: project on change").click();
    h.run();
    assert!(h.state().builder.analysis.is_valid(), "{:?}", h.state().builder.analysis.errors);
    assert!(h.query_by_label_contains("option A shortcut cannot").is_none());
    assert!(h.query_by_label("depth ?").is_none());
}

#[test]
fn a_preset_loads_from_the_menu_and_its_depth_control_rebuilds_it() {
    let mut h = harness();
    h.run();
    h.get_by_label("Presets").click();
    h.run();
    h.get_by_label("plain").hover();
    h.run();
    h.get_by_label("plain").click();
    h.run();
    h.get_by_label("plain-56").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "plain-56");
    assert_eq!(depth(&h), 56);
    // The depth control: n of 6n+2, shown as the depth.
    h.get_by_value("56").set_value_accesskit(2.0);
    h.run();
    assert_eq!(h.state().builder.arch.name, "plain-20");
    assert_eq!(depth(&h), 20);
}

#[test]
fn an_architecture_saves_and_loads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.json");
    let mut state = settings(dir.path());
    state.arch_path = path.display().to_string();
    let mut h = harness_with(state);
    h.run();
    h.get_by_label("block 3: residual").click();
    h.run();
    h.get_by_label("Duplicate").click();
    h.run();
    let saved = h.state().builder.arch.clone();
    h.get_by_label("Save").click();
    wait_until(&mut h, "the save", |app| path.exists() && !app.is_busy());
    h.get_by_label("New").click();
    h.run();
    assert_ne!(h.state().builder.arch, saved);
    h.get_by_label("Load").click();
    wait_until(&mut h, "the load", |app| app.builder.arch == saved);
    assert_eq!(Architecture::load(&path).unwrap(), saved);
}

#[test]
fn a_large_network_stays_usable() {
    let mut h = harness();
    h.run();
    h.state_mut().push(AppCommand::LoadPreset("resnet-1202".into()));
    h.run();
    assert_eq!(depth(&h), 1202);
    // Repeats are collapsed: one row per stage, each can be expanded.
    h.get_by_label("block 3: residual");
    let buttons = h.get_all_by_label("expand").count();
    assert_eq!(buttons, 3);
    h.get_all_by_label("expand").next().unwrap().click();
    h.run();
    assert!(h.state().builder.expanded.contains(&1));
    // 200 copies listed, only those in view laid out: frames stay cheap.
    let started = Instant::now();
    for _ in 0..20 {
        h.step();
    }
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Choosing a family in the builder's preset dropdown loads it at once.
#[test]
fn choosing_a_preset_family_loads_it() {
    let mut h = harness();
    h.run();
    let before = h.state().builder.arch.name.clone();
    let family = h.state().builder.preset_family;
    h.get_by_value(family.prefix()).click();
    h.run();
    h.get_by_label("highway-mlp").click();
    h.run();
    let name = h.state().builder.arch.name.clone();
    assert!(name.starts_with("highway-mlp-") && name != before, "{before} -> {name}");
}

/// The builder's depth control steps through the family's valid depths
/// (resnet: 6n+2) one at a time, and each step rebuilds the net.
#[test]
fn the_depth_control_steps_through_valid_depths() {
    let mut h = harness();
    h.run();
    h.state_mut().push(AppCommand::LoadPreset("resnet-20".into()));
    h.run();
    h.get_by_label("▶").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-26");
    h.get_by_label("▶").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-32");
    h.get_by_label("◀").click();
    h.run();
    h.get_by_label("◀").click();
    h.run();
    h.get_by_label("◀").click();
    h.run();
    assert_eq!(h.state().builder.arch.name, "resnet-14");
    assert_eq!(depth(&h), 14);
}
