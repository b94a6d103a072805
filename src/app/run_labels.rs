//! Names that tell runs apart. Two runs of `plain-mlp-30` — one sigmoid, one
//! ReLU — must not share a legend entry: a run whose name another run also
//! has is labelled with the settings in which they differ
//! (`plain-mlp-30 · sigmoid`, `resnet-20 · seed 2`).

use super::runs::RunView;
use crate::arch::Activation;
use crate::train::RunStatus;

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

/// Runs that differ only by seed, grouped: indices into `runs`, each group
/// in the order given, groups in the order of their first run. A run that
/// diverged or failed stays alone (its curve is not one of the seeds'
/// spread but a blow-up), as does every run without a seed twin.
pub fn seed_groups(runs: &[&RunView]) -> Vec<Vec<usize>> {
    let without_seed = |r: &RunView| {
        let mut pairs = settings(r);
        pairs.retain(|(name, _)| name != "seed");
        (r.name.clone(), pairs)
    };
    let groupable = |r: &RunView| !matches!(r.status, RunStatus::Diverged | RunStatus::Failed);
    let keys: Vec<_> = runs.iter().map(|r| without_seed(r)).collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let twin = groups.iter_mut().find(|g| groupable(run) && groupable(runs[g[0]]) && keys[g[0]] == keys[i]);
        match twin {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// The label of the line that `n` runs differing only by seed are drawn
/// as: the first's label without its seed, and how many seeds (for one
/// run, its own label).
pub fn seed_group_label(first: &RunView, n: usize) -> String {
    if n < 2 {
        return first.label.clone();
    }
    let kept: Vec<&str> = first.label.split(" · ").filter(|part| !part.starts_with("seed ")).collect();
    format!("{} · mean of {n} seeds", kept.join(" · "))
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

    #[test]
    fn runs_that_differ_only_by_seed_group_into_one_line() {
        use super::{seed_group_label, seed_groups};
        let seed = |s: u64| TrainConfig { seed: s, ..TrainConfig::default() };
        let mut runs = vec![
            run(1, "resnet-8", seed(1)),
            run(2, "plain-8", seed(1)),
            run(3, "resnet-8", seed(2)),
            run(4, "resnet-8", TrainConfig { lr: 0.5, ..seed(3) }),
            run(5, "resnet-8", TrainConfig { threads: Some(1), ..seed(4) }),
            run(6, "plain-8", seed(2)),
            run(7, "plain-8", seed(3)),
        ];
        runs[6].status = crate::train::RunStatus::Diverged;
        let refs: Vec<&RunView> = runs.iter().collect();
        // The thread count does not change what a run learns; the learning rate does;
        // a diverged run is not a seed's spread.
        assert_eq!(seed_groups(&refs), vec![vec![0, 2, 4], vec![1, 5], vec![3], vec![6]]);
        let mut labelled = runs.clone();
        let names = labels(&labelled.iter().collect::<Vec<_>>());
        for (run, label) in labelled.iter_mut().zip(names) {
            run.label = label;
        }
        // The group's label keeps what tells it from run 4 (the learning rate), drops the seed.
        let lr = TrainConfig::default().lr;
        assert_eq!(labelled[0].label, format!("resnet-8 · lr {lr} · seed 1"));
        assert_eq!(seed_group_label(&labelled[0], 3), format!("resnet-8 · lr {lr} · mean of 3 seeds"));
        assert_eq!(seed_group_label(&labelled[0], 1), labelled[0].label, "one run keeps its own label");
        assert_eq!(seed_groups(&[]), Vec::<Vec<usize>>::new());
    }
}
