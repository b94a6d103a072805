//! Names that tell runs apart. Two runs of `plain-mlp-30` — one sigmoid, one
//! ReLU — must not share a legend entry: a run whose name another run also
//! has is labelled with the settings in which they differ
//! (`plain-mlp-30 · sigmoid`, `resnet-20 · seed 2`).

use super::runs::RunView;
use crate::arch::Activation;

/// A run's settings as (name, value) pairs, in a fixed order: the training
/// flags it was started with, and the activation its layers use.
fn settings(run: &RunView) -> Vec<(String, String)> {
    let args = run.config.to_args();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let name = args[i].trim_start_matches("--").to_string();
        let value = match args.get(i + 1) {
            Some(v) if !v.starts_with("--") => {
                i += 1;
                v.clone()
            }
            _ => "on".to_string(),
        };
        i += 1;
        // How a run was computed never changes what it learnt.
        if !matches!(name.as_str(), "backend" | "threads" | "probe-every") {
            pairs.push((name, value));
        }
    }
    if run.config.overrides.activation.is_none() {
        let first = run.arch.blocks.iter().find(|b| b.kind.has_layers()).map(|b| b.layer.activation);
        pairs.push(("activation".into(), first.map_or(String::new(), activation_word)));
    }
    pairs
}

fn activation_word(a: Activation) -> String {
    format!("{a:?}").to_lowercase()
}

/// How one differing setting reads in a label: the value alone where it
/// speaks for itself (`sigmoid`, `no-augment`), else `lr 0.01`.
fn describe(name: &str, value: &str) -> String {
    match name {
        "activation" | "data" | "optimizer" | "schedule" => value.to_string(),
        "init" => format!("{value} init"),
        "norm" if value == "none" => "no BN".into(),
        "augment" | "no-augment" | "nesterov" => name.to_string(),
        _ => format!("{name} {value}"),
    }
}

/// The label of each run, in the order given: its name, and for runs whose
/// name another run shares, the settings that differ within that group.
/// Twins that differ in nothing get `#2`, `#3` in the order given.
pub fn labels(runs: &[&RunView]) -> Vec<String> {
    let all: Vec<Vec<(String, String)>> = runs.iter().map(|r| settings(r)).collect();
    let mut out = Vec::with_capacity(runs.len());
    for (i, run) in runs.iter().enumerate() {
        let twins: Vec<usize> = (0..runs.len()).filter(|&j| runs[j].name == run.name).collect();
        if twins.len() < 2 {
            out.push(run.name.clone());
            continue;
        }
        let value = |j: usize, name: &str| all[j].iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let mut names: Vec<&str> = Vec::new();
        for j in &twins {
            for (n, _) in &all[*j] {
                if !names.contains(&n.as_str()) {
                    names.push(n);
                }
            }
        }
        // What the layers compute reads first, then the training settings.
        names.sort_by_key(|n| !matches!(*n, "activation" | "init" | "norm"));
        let differing: Vec<String> = names
            .iter()
            .filter(|n| twins.iter().any(|&j| value(j, n) != value(i, n)))
            .filter_map(|n| value(i, n).map(|v| describe(n, &v)))
            .collect();
        let mut label = run.name.clone();
        if differing.is_empty() {
            let position = twins.iter().position(|&j| j == i).unwrap_or(0);
            if position > 0 {
                label.push_str(&format!(" #{}", position + 1));
            }
        } else {
            label.push_str(" · ");
            label.push_str(&differing.join(" · "));
        }
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::labels;
    use crate::app::runs::RunView;
    use crate::arch::{Activation, presets};
    use crate::train::TrainConfig;

    fn run(id: u64, preset: &str, config: TrainConfig) -> RunView {
        let arch = presets::build(preset, crate::data::DataSpec::FashionMini.expected_shape()).expect("preset");
        RunView::new(id, preset.into(), arch, config, None)
    }

    #[test]
    fn twins_are_told_apart_by_what_differs() {
        let mut sigmoid = TrainConfig::default();
        sigmoid.overrides.activation = Some(Activation::Sigmoid);
        let relu = TrainConfig::default();
        let mut seeded = TrainConfig::default();
        seeded.seed = 2;
        seeded.threads = Some(1);
        let runs = [
            run(1, "plain-mlp-30", sigmoid.clone()),
            run(2, "plain-mlp-30", relu.clone()),
            run(3, "resnet-8", relu.clone()),
            run(4, "resnet-8", seeded),
            run(5, "plain-8", relu.clone()),
            run(6, "plain-8", relu.clone()),
        ];
        let refs: Vec<&RunView> = runs.iter().collect();
        let got = labels(&refs);
        assert_eq!(got[0], "plain-mlp-30 · sigmoid");
        assert_eq!(got[1], "plain-mlp-30 · relu");
        // The thread count changes how fast, not what: it is left out.
        assert_eq!(got[2], "resnet-8 · seed 42".replace("42", &relu.seed.to_string()));
        assert_eq!(got[3], "resnet-8 · seed 2");
        assert_eq!((got[4].as_str(), got[5].as_str()), ("plain-8", "plain-8 #2"));
        // A name no other run has stays as it is.
        assert_eq!(labels(&refs[..1]), vec!["plain-mlp-30".to_string()]);
    }
}
