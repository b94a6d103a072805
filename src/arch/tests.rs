use super::presets::{self, Family};
use super::*;

const CIFAR: Shape = Shape::Map { channels: 3, height: 32, width: 32 };

fn params(name: &str) -> usize {
    let arch = presets::build(name, CIFAR).unwrap();
    let analysis = arch.analyse(CIFAR, 10);
    assert!(analysis.is_valid(), "{name}: {:?}", analysis.errors);
    analysis.params
}

fn within_one_percent(actual: usize, paper_millions: f64) -> bool {
    let paper = paper_millions * 1e6;
    // The papers round to two significant figures; 1 % of the printed figure
    // plus half a unit of its last digit.
    let rounding = if paper_millions < 1.0 { 0.005e6 } else { 0.05e6 };
    (actual as f64 - paper).abs() <= 0.01 * paper + rounding
}

#[test]
fn resnet_counts_match_he_et_al() {
    for (name, paper) in [("resnet-20", 0.27), ("resnet-32", 0.46), ("resnet-44", 0.66), ("resnet-56", 0.85), ("resnet-110", 1.7)] {
        let p = params(name);
        assert!(within_one_percent(p, paper), "{name}: {p} vs paper {paper}M");
    }
    // The exact option-A count of ResNet-20.
    assert_eq!(params("resnet-20"), 269_722);
}

#[test]
fn plain_twin_has_exactly_the_residual_parameters() {
    for depth in [8, 20, 56, 110] {
        assert_eq!(params(&format!("plain-{depth}")), params(&format!("resnet-{depth}")));
    }
}

#[test]
fn densenet_counts_match_huang_et_al() {
    let p = params("densenet-40-12");
    assert!(within_one_percent(p, 1.0), "densenet-40: {p}");
    // The paper prints DenseNet-BC-100 as 0.8M (one decimal): 0.77M rounds to it.
    let p = params("densenet-bc-100-12");
    assert!((750_000..850_000).contains(&p), "densenet-bc-100: {p}");
}

#[test]
fn preact_counts_match_he_et_al_2016b() {
    for (name, paper) in [("preact-resnet-110", 1.7), ("preact-resnet-164", 1.7), ("preact-resnet-1001", 10.2)] {
        let p = params(name);
        assert!(within_one_percent(p, paper), "{name}: {p} vs paper {paper}M");
    }
}

#[test]
fn depth_is_counted_as_the_papers_count_it() {
    for name in [
        "resnet-20",
        "plain-56",
        "resnet-110",
        "resnet-1202",
        "preact-resnet-164",
        "preact-resnet-1001",
        "densenet-40-12",
        "densenet-bc-100-12",
        "highway-32",
        "plain-mlp-30",
        "highway-mlp-50",
        "resnet-mlp-30",
    ] {
        let (_, size) = presets::parse_name(name).unwrap();
        let arch = presets::build(name, CIFAR).unwrap();
        assert_eq!(arch.analyse(CIFAR, 10).depth, size, "{name}");
    }
    // FractalNet counts conv layers: 5 blocks of 2^(C-1); the classifier adds one.
    let arch = presets::build("fractal-4", CIFAR).unwrap();
    assert_eq!(arch.analyse(CIFAR, 10).depth, 41);
}

#[test]
fn every_featured_preset_is_valid_on_cifar_fashion_and_digits() {
    for name in presets::featured() {
        for input in [CIFAR, Shape::map(1, 28, 28), Shape::map(1, 8, 8)] {
            let arch = presets::build(&name, input).unwrap();
            let analysis = arch.analyse(input, 10);
            assert!(analysis.is_valid(), "{name} on {input}: {:?}", analysis.errors);
            assert_eq!(analysis.output, Some(Shape::Flat { features: 10 }), "{name}");
            assert!(analysis.params > 0 && analysis.depth > 0);
        }
    }
}

#[test]
fn highway_mlp_and_plain_mlp_have_about_equal_parameters_per_layer() {
    let flat = Shape::Flat { features: 50 };
    let highway = infer_block(
        &BlockKind::HighwayDense { carry: Carry::Coupled, gate_bias: -2.0 },
        &LayerOptions { norm: Norm::None, ..Default::default() },
        flat,
        10,
    )
    .unwrap();
    let plain = infer_block(
        &BlockKind::Dense { units: 71 },
        &LayerOptions { norm: Norm::None, ..Default::default() },
        Shape::Flat { features: 71 },
        10,
    )
    .unwrap();
    assert_eq!(highway.1, 5100);
    assert_eq!(plain.1, 5112);
}

#[test]
fn sweep_depths_map_to_the_nearest_valid_preset() {
    assert_eq!(Family::Resnet.size_for_depth(20), 20);
    assert_eq!(Family::Resnet.size_for_depth(21), 20);
    assert_eq!(Family::Fractal.size_for_depth(20), 3);
    assert_eq!(Family::Densenet.size_for_depth(40), 40);
    assert_eq!(Family::HighwayMlp.size_for_depth(10), 10);
    // Depths past any preset give the deepest, never a wrapped-around one.
    assert_eq!(Family::Resnet.size_for_depth(usize::MAX), 1202);
    assert_eq!(Family::Resnet.size_for_depth(100_000), 1202);
    assert_eq!(Family::Fractal.size_for_depth(usize::MAX), 5);
    assert_eq!(Family::Resnet.max_depth(), 1202);
    assert_eq!(Family::Fractal.max_depth(), 81);
}

#[test]
fn stochastic_depth_follows_the_linear_rule() {
    let arch = presets::build("resnet-sd-110", CIFAR).unwrap();
    let analysis = arch.analyse(CIFAR, 10);
    let survival: Vec<f32> = analysis.instances.iter().filter_map(|i| i.survival).collect();
    assert_eq!(survival.len(), 54);
    for (l, p) in survival.iter().enumerate() {
        let expected = 1.0 - ((l + 1) as f32 / 54.0) * 0.5;
        assert!((p - expected).abs() < 1e-6);
    }
    assert!((survival[53] - 0.5).abs() < 1e-6);
    // A plain ResNet has no stochastic depth.
    let plain = presets::build("resnet-110", CIFAR).unwrap().analyse(CIFAR, 10);
    assert!(plain.instances.iter().all(|i| i.survival.is_none()));
}

#[test]
fn json_round_trips_every_preset() {
    for name in presets::featured() {
        let arch = presets::build(&name, CIFAR).unwrap();
        let back = Architecture::from_json(&arch.to_json()).unwrap();
        assert_eq!(arch, back, "{name}");
    }
}

#[test]
fn overrides_change_every_layer() {
    let mut arch = presets::build("plain-mlp-10", CIFAR).unwrap();
    arch.apply_overrides(&LayerOverrides {
        activation: Some(Activation::Sigmoid),
        init: Some(Init::Standard),
        norm: None,
        residual_init: None,
    });
    assert!(arch.blocks.iter().all(|b| b.layer.activation == Activation::Sigmoid && b.layer.init == Init::Standard));
    assert!(arch.name.contains("sigmoid"));
}

/// A pre-activation net's bare stem stays bare under the flags: its output
/// is normalised and activated by the first block, so a flagged activation
/// there too would squash the stream twice (sigmoid units then learn
/// nothing).
#[test]
fn overrides_leave_a_pre_activation_stem_linear() {
    let overrides = LayerOverrides {
        activation: Some(Activation::Sigmoid),
        init: Some(Init::Standard),
        norm: Some(Norm::Batchnorm),
        residual_init: None,
    };
    for name in ["resnet-mlp-30", "preact-resnet-20"] {
        let mut arch = presets::build(name, CIFAR).unwrap();
        arch.apply_overrides(&overrides);
        let (stem, rest) = arch.blocks.split_first().unwrap();
        assert_eq!((stem.layer.activation, stem.layer.norm, stem.layer.init), (Activation::Linear, Norm::None, Init::Standard), "{name}");
        assert!(rest.iter().filter(|b| b.kind.has_layers()).all(|b| b.layer.activation == Activation::Sigmoid), "{name}");
        assert!(arch.analyse(CIFAR, 10).is_valid(), "{name}");
    }
}

fn errors_of(json: &str) -> String {
    match Architecture::from_json(json) {
        Err(e) => e.to_string(),
        Ok(arch) => arch.analyse(CIFAR, 10).errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
    }
}

#[test]
fn invalid_architectures_each_give_their_own_error() {
    let cases: &[(&str, &str)] = &[
        // bad shapes
        (
            r#"{"blocks":[{"kind":"conv","filters":8},{"kind":"max_pool","repeat":5},{"kind":"residual","filters":8,"stride":2},{"kind":"classifier"}]}"#,
            "block 3 (residual): stride 2 on a 1x1 feature map",
        ),
        (
            r#"{"blocks":[{"kind":"global_avg_pool"},{"kind":"conv","filters":8},{"kind":"classifier"}]}"#,
            "block 2 (conv): a conv layer needs a feature map, but its input is a flat vector of 3 features",
        ),
        (
            r#"{"blocks":[{"kind":"conv","filters":32},{"kind":"residual","filters":16,"stride":2},{"kind":"classifier"}]}"#,
            "block 2 (residual): option A shortcut cannot reduce channels (32 → 16)",
        ),
        (r#"{"blocks":[{"kind":"max_pool","size":64},{"kind":"classifier"}]}"#, "block 1 (max pool): 64x64 pool on a 32x32 feature map"),
        // zero channels
        (r#"{"blocks":[{"kind":"conv","filters":0},{"kind":"classifier"}]}"#, "block 1 (conv): filters must be at least 1, not 0"),
        (
            r#"{"blocks":[{"kind":"dense_block","layers":4,"growth_rate":0},{"kind":"classifier"}]}"#,
            "block 1 (dense block): growth rate must be at least 1",
        ),
        // options out of range
        (
            r#"{"blocks":[{"kind":"fractal","columns":3,"filters":8,"local_drop":1.5},{"kind":"classifier"}]}"#,
            "local drop-path probability must be between 0 and 1",
        ),
        (r#"{"blocks":[{"kind":"conv","filters":8,"repeat":0},{"kind":"classifier"}]}"#, "block 1 (conv): repeat must be at least 1"),
        (
            r#"{"blocks":[{"kind":"residual","filters":8,"branch_layers":5},{"kind":"classifier"}]}"#,
            "block 1 (residual): branch_layers must be between 1 and 4 (weight layers in the residual branch), not 5",
        ),
        (
            r#"{"blocks":[{"kind":"residual_dense","units":8,"branch_layers":0},{"kind":"classifier"}]}"#,
            "block 1 (residual (dense)): branch_layers must be between 1 and 4",
        ),
        (
            r#"{"blocks":[{"kind":"residual","filters":8,"bottleneck":true,"branch_layers":3},{"kind":"classifier"}]}"#,
            "a bottleneck block always holds 3 layers",
        ),
        // residual initialisations that do not fit the block
        (
            r#"{"blocks":[{"kind":"residual","filters":3,"shortcut":"none","residual_init":"zero"},{"kind":"classifier"}]}"#,
            "block 1 (plain pair): residual_init zero needs a shortcut",
        ),
        (
            r#"{"blocks":[{"kind":"residual","filters":3,"residual_init":"fixup"},{"kind":"classifier"}]}"#,
            "block 1 (residual): Fixup (Zhang et al. 2019) trains without normalisation",
        ),
        (
            r#"{"blocks":[{"kind":"residual_dense","units":8,"preactivation":true,"norm":"none","residual_init":"fixup"},{"kind":"classifier"}]}"#,
            "Fixup (Zhang et al. 2019) is defined for post-activation blocks",
        ),
        (r#"{"blocks":[{"kind":"residual","filters":3,"residual_init":"ones"},{"kind":"classifier"}]}"#, "unknown variant `ones`"),
        (
            r#"{"blocks":[{"kind":"residual_dense","units":0},{"kind":"classifier"}]}"#,
            "block 1 (residual (dense)): units must be at least 1, not 0",
        ),
        (r#"{"blocks":[{"kind":"residual_dense","units":70000},{"kind":"classifier"}]}"#, "units 70000 is more than the limit of 65536"),
        (
            r#"{"blocks":[{"kind":"residual_dense","units":8,"shortcut":"A"},{"kind":"classifier"}]}"#,
            "a dense block changing width (3072 → 8) needs a projection: use B",
        ),
        (
            r#"{"blocks":[{"kind":"residual_dense","units":8,"survival":1.5},{"kind":"classifier"}]}"#,
            "survival probability must be in (0, 1], not 1.5",
        ),
        // structure
        (r#"{"blocks":[{"kind":"conv","filters":8}]}"#, "network: the network has no classifier"),
        (
            r#"{"blocks":[{"kind":"classifier"},{"kind":"conv","filters":8}]}"#,
            "block 1 (classifier): the classifier must be the last block",
        ),
        // unknown kind and option
        (r#"{"blocks":[{"kind":"inception","filters":8}]}"#, "block 1: unknown kind \"inception\""),
        (r#"{"blocks":[{"kind":"conv","filtres":8}]}"#, "block 1: (conv) unknown field `filtres`"),
        (r#"{"blocks":[{"kind":"conv","filters":8,"activation":"swish"}]}"#, "block 1: (conv) unknown variant `swish`"),
        (r#"{"blocks":[{"filters":8}]}"#, "block 1: has no \"kind\""),
        // malformed and truncated JSON
        (r#"{"blocks":[{"kind":"conv" "filters":8}]}"#, "not valid JSON (line 1, column 27)"),
        (r#"{"blocks":[{"kind":"conv","filters":8},"#, "ends early"),
        ("", "ends early"),
        (r#"{"format_version":99,"blocks":[]}"#, "format version 99 is newer"),
        (r#"[1,2]"#, "must be a JSON object"),
    ];
    for (json, expected) in cases {
        let message = errors_of(json);
        assert!(message.contains(expected), "{json}\n  expected: {expected}\n  got: {message}");
    }
}

#[test]
fn a_valid_network_has_no_errors_and_shapes_flow() {
    let arch = presets::build("resnet-20", CIFAR).unwrap();
    let analysis = arch.analyse(CIFAR, 10);
    let shapes: Vec<String> = analysis.entries.iter().map(|e| e.output.unwrap().to_string()).collect();
    assert_eq!(shapes, ["16x32x32", "16x32x32", "32x16x16", "64x8x8", "64", "10"]);
}

#[test]
fn shapes_parse_from_text() {
    assert_eq!(Shape::parse("3x32x32"), Ok(Shape::map(3, 32, 32)));
    assert_eq!(Shape::parse("784"), Ok(Shape::Flat { features: 784 }));
    assert!(Shape::parse("3x0x32").is_err());
    assert!(Shape::parse("big").is_err());
}

#[test]
#[ignore = "prints the preset table for the docs"]
fn print_preset_counts() {
    for name in presets::featured() {
        let a = presets::build(&name, CIFAR).unwrap().analyse(CIFAR, 10);
        println!("{name:24} depth {:5} params {:>10}", a.depth, a.params);
    }
}

#[test]
fn branch_layers_set_the_depth_and_parameters_of_residual_blocks() {
    let bn = LayerOptions::default();
    let plain = LayerOptions { norm: Norm::None, ..Default::default() };
    let map = Shape::map(8, 6, 6);
    for layers in 1..=4 {
        for preactivation in [false, true] {
            // Conv: 8 → 16 channels, option B projects the input.
            let kind = BlockKind::Residual {
                filters: 16,
                stride: 1,
                bottleneck: false,
                preactivation,
                shortcut: Shortcut::B,
                survival: None,
                branch_layers: layers,
                residual_init: ResidualInit::Default,
            };
            let (out, params, depth) = infer_block(&kind, &bn, map, 10).unwrap();
            let norms = if preactivation { 2 * 8 + (layers - 1) * 2 * 16 } else { layers * 2 * 16 };
            let expected = 9 * 8 * 16 + (layers - 1) * 9 * 16 * 16 + norms + (8 * 16 + 2 * 16);
            assert_eq!((out, params, depth), (Shape::map(16, 6, 6), expected, layers), "conv, {layers} layers, pre {preactivation}");
            // Dense: 20 → 30 units, without BN (a bias per layer and on the projection).
            let kind = BlockKind::ResidualDense {
                units: 30,
                branch_layers: layers,
                preactivation,
                shortcut: Shortcut::B,
                survival: None,
                residual_init: ResidualInit::Default,
            };
            let (out, params, depth) = infer_block(&kind, &plain, Shape::Flat { features: 20 }, 10).unwrap();
            let expected = 20 * 30 + (layers - 1) * 30 * 30 + layers * 30 + (20 * 30 + 30);
            assert_eq!((out, params, depth), (Shape::Flat { features: 30 }, expected, layers), "dense, {layers} layers");
            // Same width, identity shortcut: the branch alone.
            let (_, params, _) = infer_block(&kind, &bn, Shape::Flat { features: 30 }, 10).unwrap();
            assert_eq!(params, layers * (30 * 30 + 2 * 30), "dense identity, {layers} layers");
        }
    }
    // A network of them counts the weight layers on its longest path.
    let json = r#"{"blocks":[{"kind":"conv","filters":8},{"kind":"residual","filters":8,"branch_layers":3,"repeat":2},
        {"kind":"global_avg_pool"},{"kind":"residual_dense","units":8,"branch_layers":4},
        {"kind":"residual_dense","units":8,"branch_layers":1},{"kind":"classifier"}]}"#;
    let analysis = Architecture::from_json(json).unwrap().analyse(CIFAR, 10);
    assert!(analysis.is_valid(), "{:?}", analysis.errors);
    assert_eq!(analysis.depth, 1 + 2 * 3 + 4 + 1 + 1);
}

#[test]
fn branch_layers_and_dense_residual_blocks_round_trip_through_json() {
    let json = r#"{"name":"mix","stochastic_depth":{"final_survival":0.5},"blocks":[
        {"kind":"conv","filters":8},
        {"kind":"residual","filters":8,"branch_layers":1},
        {"kind":"residual","filters":16,"stride":2,"branch_layers":4,"preactivation":true,"shortcut":"B"},
        {"kind":"residual_dense","units":12,"branch_layers":3,"preactivation":true,"survival":0.7},
        {"kind":"residual_dense","units":12,"shortcut":"none","norm":"none","activation":"sigmoid"},
        {"kind":"classifier"}]}"#;
    let arch = Architecture::from_json(json).unwrap();
    let text = arch.to_json();
    assert_eq!(Architecture::from_json(&text).unwrap(), arch);
    assert!(matches!(arch.blocks[1].kind, BlockKind::Residual { branch_layers: 1, .. }));
    assert!(matches!(
        arch.blocks[3].kind,
        BlockKind::ResidualDense { units: 12, branch_layers: 3, preactivation: true, shortcut: Shortcut::B, survival: Some(_), .. }
    ));
    // The default of 2 is not written, so earlier files and presets read and write as before.
    let resnet = presets::build("resnet-20", CIFAR).unwrap().to_json();
    assert!(!resnet.contains("branch_layers"));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["blocks"][4].get("branch_layers"), None);
    assert_eq!(value["blocks"][4]["kind"], "residual_dense");
    assert_eq!(value["blocks"][3]["branch_layers"], 3);
    // Two stochastic-depth blocks with shortcuts share the linear rule; the plain one has none.
    let analysis = arch.analyse(CIFAR, 10);
    assert!(analysis.is_valid(), "{:?}", analysis.errors);
    let survival: Vec<Option<f32>> = analysis.instances.iter().map(|i| i.survival).collect();
    assert_eq!(survival[1], Some(1.0 - (1.0 / 3.0) * 0.5));
    assert_eq!(survival[3], Some(0.7));
    assert_eq!(survival[4], None);
}

#[test]
fn residual_init_round_trips_through_json_and_overrides_only_blocks_with_shortcuts() {
    let json = r#"{"blocks":[
        {"kind":"conv","filters":8},
        {"kind":"residual","filters":8,"residual_init":"zero"},
        {"kind":"residual","filters":8,"residual_init":"fixup","norm":"none"},
        {"kind":"residual","filters":8,"shortcut":"none"},
        {"kind":"residual_dense","units":12,"residual_init":"skipinit"},
        {"kind":"classifier"}]}"#;
    let arch = Architecture::from_json(json).unwrap();
    assert_eq!(Architecture::from_json(&arch.to_json()).unwrap(), arch);
    let inits: Vec<Option<ResidualInit>> = arch.blocks.iter().map(|b| b.kind.residual_init()).collect();
    let (zero, fixup, skipinit) = (Some(ResidualInit::Zero), Some(ResidualInit::Fixup), Some(ResidualInit::Skipinit));
    assert_eq!(inits, [None, zero, fixup, None, skipinit, None]);
    assert!(arch.analyse(CIFAR, 10).is_valid());
    // The default is not written, so earlier files and presets read and write as before.
    assert!(!presets::build("resnet-20", CIFAR).unwrap().to_json().contains("residual_init"));
    // The flag sets every block with a shortcut and leaves plain twins alone.
    let mut plain = presets::build("plain-20", CIFAR).unwrap();
    let overrides = LayerOverrides { residual_init: zero, ..LayerOverrides::default() };
    plain.apply_overrides(&overrides);
    assert!(!plain.has_residual_branches() && plain.name == "plain-20" && plain.analyse(CIFAR, 10).is_valid());
    let mut resnet = presets::build("resnet-20", CIFAR).unwrap();
    resnet.apply_overrides(&overrides);
    assert_eq!(resnet.name, "resnet-20 [zero residual init]");
    assert!(resnet.blocks.iter().filter_map(|b| b.kind.residual_init()).all(|i| Some(i) == zero));
}

#[test]
fn resnet_mlp_has_plain_mlps_layout_at_about_its_size() {
    for size in [10, 30, 100] {
        let resnet = params(&format!("resnet-mlp-{size}"));
        let plain = params(&format!("plain-mlp-{size}"));
        // Batch norm's 2 parameters per unit where plain-mlp has a bias.
        let difference = (resnet as f64 - plain as f64) / plain as f64;
        assert!((0.0..0.02).contains(&difference), "resnet-mlp-{size} {resnet} vs plain-mlp-{size} {plain}");
    }
    // Per hidden layer: 71 x 71 + BN against highway's 2 x (50 x 50 + 50).
    let per_layer = |family: &str| (params(&format!("{family}-100")) - params(&format!("{family}-10"))) as f64 / 90.0;
    assert!((per_layer("resnet-mlp") / per_layer("highway-mlp") - 1.0).abs() < 0.02);
    assert!(presets::build("resnet-mlp-31", CIFAR).is_err(), "odd depths do not split into blocks of 2");
    assert_eq!(presets::parse_name("resnet-mlp-30"), Some((Family::ResnetMlp, 30)));
    assert_eq!(Family::ResnetMlp.size_for_depth(21), 20);
}

/// Probe and lesion tables name a plain net's pairs as plain, not after the
/// residual block they are built as without a shortcut.
#[test]
fn a_plain_nets_blocks_are_not_named_residual() {
    let names = |preset: &str, input: Shape| {
        let arch = presets::build(preset, input).unwrap();
        let analysis = arch.analyse(input, 10);
        let repeats: Vec<usize> = arch.blocks.iter().map(|b| b.repeat).collect();
        analysis.instances.iter().map(|i| i.name(repeats[i.entry])).collect::<Vec<_>>()
    };
    let plain = names("plain-20", Shape::map(3, 32, 32));
    assert_eq!(plain[1], "2 plain_pair (1/3)");
    assert!(plain.iter().all(|n| !n.contains("residual")), "{plain:?}");
    assert_eq!(names("resnet-20", Shape::map(3, 32, 32))[1], "2 residual (1/3)");
    let mlp = names("plain-mlp-8", Shape::map(2, 1, 1));
    assert!(mlp.iter().all(|n| !n.contains("residual")), "{mlp:?}");
}
