//! Glorot & Bengio (2010): the gradient with respect to each layer's output
//! at initialisation, in deep tanh and sigmoid MLPs, with the "standard"
//! initialisation U(±1/√fan_in) and with their normalised (Xavier) one.
//!
//! Theory for standard init and tanh near zero: going one layer down
//! multiplies the back-propagated gradient's norm by about
//! √(fan_in · Var W) · |tanh'(0)| = √(1/3) — it shrinks by 1/√3 per layer.
//! Xavier's Var W = 2/(fan_in + fan_out) keeps that factor near 1.

use super::{Context, ReproduceError, relative};
use crate::arch::{Activation, Init, LayerOverrides, Norm, presets};
use crate::report::figure::{COLORS, Figure, Panel, Series};

const SEEDS: [u64; 3] = [1, 2, 3];

fn label(activation: Activation, init: Init) -> String {
    format!(
        "{} {}",
        format!("{activation:?}").to_lowercase(),
        match init {
            Init::Standard => "standard",
            Init::Xavier => "Xavier",
            Init::He => "He",
        }
    )
}

/// Below this, an f32 gradient has underflowed (f32's smallest normal
/// number is about 1.2e-38): it is zero or denormal, not a measurement.
const UNDERFLOW: f64 = 1e-37;

/// The mean factor per hidden layer: the geometric mean of norm(l)/norm(l+1)
/// over the hidden layers (between the first dense layer and the
/// classifier) whose gradient has not underflowed f32.
fn factor_per_layer(norms: &[f64]) -> f64 {
    let hidden = &norms[..norms.len() - 1];
    let last = hidden.len() - 1;
    let first = (0..=last).find(|&i| hidden[i..].iter().all(|v| *v > UNDERFLOW)).unwrap_or(last);
    if first == last {
        return f64::NAN;
    }
    (hidden[first] / hidden[last]).powf(1.0 / (last - first) as f64)
}

/// Layers (1-based, from the first) whose gradient underflowed f32.
fn underflowed_layers(norms: &[f64]) -> usize {
    norms[..norms.len() - 1].iter().take_while(|v| **v <= UNDERFLOW).count()
}

/// The activation × init pairs compared, in the figure's and tables' order.
const COMBOS: [(Activation, Init); 4] = [
    (Activation::Tanh, Init::Standard),
    (Activation::Tanh, Init::Xavier),
    (Activation::Sigmoid, Init::Standard),
    (Activation::Sigmoid, Init::Xavier),
];

/// What was measured, by pair (its index in [`COMBOS`]).
struct Measured {
    depths: Vec<usize>,
    /// The depth whose per-layer profile is drawn.
    show_depth: usize,
    /// Rows of `output_gradients.csv`.
    rows: Vec<String>,
    /// (pair, norms at `show_depth`).
    profiles: Vec<(usize, Vec<f64>)>,
    /// Per pair, [depth, first / last hidden layer's gradient] where the first did not underflow.
    ratios: Vec<Vec<[f64; 2]>>,
    /// (pair, depth, factor per layer).
    factors: Vec<(usize, usize, f64)>,
    /// (pair, depth, layers that underflowed).
    underflows: Vec<(usize, usize, usize)>,
}

pub fn run(ctx: &Context) -> Result<String, ReproduceError> {
    let depths: Vec<usize> = if ctx.options.quick { vec![10, 20] } else { vec![10, 20, 50, 100] };
    let measured = measure(ctx, depths)?;
    ctx.write_csv("output_gradients.csv", "activation,init,depth,layer,output_grad_norm", &measured.rows)?;
    let png = ctx.dir.join("figure.png");
    figure(ctx, &measured).save_png(&png)?;
    Ok(markdown(ctx, &measured, &png))
}

/// The output gradient of every layer at initialisation, for each pair and
/// depth: a geometric mean over the seeds (and two batches each).
fn measure(ctx: &Context, depths: Vec<usize>) -> Result<Measured, ReproduceError> {
    let show_depth = *depths.iter().find(|&&d| d == 50).unwrap_or(depths.last().unwrap_or(&10));
    let shape = ctx.data.shape();
    let mut m = Measured {
        depths: depths.clone(),
        show_depth,
        rows: Vec::new(),
        profiles: Vec::new(),
        ratios: vec![Vec::new(); COMBOS.len()],
        factors: Vec::new(),
        underflows: Vec::new(),
    };
    for &depth in &depths {
        let arch = presets::build(&format!("plain-mlp-{depth}"), shape)?;
        for (c, &(activation, init)) in COMBOS.iter().enumerate() {
            (ctx.log)(&format!("plain-mlp-{depth}, {}", label(activation, init)));
            let overrides = LayerOverrides { activation: Some(activation), init: Some(init), norm: Some(Norm::None), residual_init: None };
            // Geometric mean over seeds (and batches).
            let mut log_mean: Vec<f64> = Vec::new();
            for &seed in &SEEDS {
                let norms = ctx.initial_output_gradients(&arch, &overrides, seed, 2)?;
                if log_mean.is_empty() {
                    log_mean = vec![0.0; norms.len()];
                }
                for (m, v) in log_mean.iter_mut().zip(&norms) {
                    *m += v.ln() / SEEDS.len() as f64;
                }
            }
            let norms: Vec<f64> = log_mean.into_iter().map(f64::exp).collect();
            for (l, v) in norms.iter().enumerate() {
                m.rows.push(format!(
                    "{},{},{depth},{},{v:e}",
                    format!("{activation:?}").to_lowercase(),
                    format!("{init:?}").to_lowercase(),
                    l + 1
                ));
            }
            let first_over_last_hidden = norms[0] / norms[norms.len() - 2];
            if norms[0] > UNDERFLOW {
                m.ratios[c].push([depth as f64, first_over_last_hidden]);
            }
            m.underflows.push((c, depth, underflowed_layers(&norms)));
            m.factors.push((c, depth, factor_per_layer(&norms)));
            if depth == show_depth {
                m.profiles.push((c, norms));
            }
        }
    }
    Ok(m)
}

/// 1/√3, the factor per layer for tanh with the standard init.
fn theory() -> f64 {
    1.0 / 3f64.sqrt()
}

/// The per-layer profiles at `show_depth` (tanh, sigmoid) and the first /
/// last ratio against depth, with the theory dashed.
fn figure(ctx: &Context, m: &Measured) -> Figure {
    let (theory, show_depth) = (theory(), m.show_depth);
    let mut panels = Vec::new();
    for (title, wanted) in [("tanh", Activation::Tanh), ("sigmoid", Activation::Sigmoid)] {
        let mut panel = Panel::new(
            format!("{title}, plain MLP of depth {show_depth} (71 units), at initialisation"),
            "layer (1 = first)",
            "‖∂L/∂output‖",
            true,
        )
        .legend_at(egui_plot::Corner::RightBottom);
        for (c, norms) in &m.profiles {
            let (activation, init) = COMBOS[*c];
            if activation != wanted {
                continue;
            }
            let points: Vec<[f64; 2]> =
                norms[..norms.len() - 1].iter().enumerate().filter(|(_, v)| **v > UNDERFLOW).map(|(l, v)| [(l + 1) as f64, *v]).collect();
            panel = panel.with(Series::new(label(activation, init), points, COLORS[*c]).without_markers());
            if activation == Activation::Tanh && init == Init::Standard {
                // 1/√3 per layer, anchored at the last hidden layer.
                let last = norms.len() - 2;
                let anchor = norms[last];
                let line: Vec<[f64; 2]> = (0..=last).map(|l| [(l + 1) as f64, anchor * theory.powi((last - l) as i32)]).collect();
                panel = panel.with(Series::new("theory: ×1/√3 per layer", line, COLORS[7]).dashed().without_markers());
            }
        }
        panels.push(panel);
    }
    let mut ratio_panel =
        Panel::new("first / last hidden layer gradient vs depth", "depth", "ratio", true).legend_at(egui_plot::Corner::LeftBottom);
    for (c, points) in m.ratios.iter().enumerate() {
        let (activation, init) = COMBOS[c];
        ratio_panel = ratio_panel.with(Series::new(label(activation, init), points.clone(), COLORS[c]));
    }
    let theory_points: Vec<[f64; 2]> = m.depths.iter().map(|&d| [d as f64, theory.powi(d as i32 - 2)]).collect();
    ratio_panel = ratio_panel.with(Series::new("theory, tanh standard", theory_points, COLORS[7]).dashed());
    panels.push(ratio_panel);
    Figure {
        title: "Glorot & Bengio (2010): back-propagated gradients at initialisation".into(),
        caption: format!(
            "The gradient of the loss with respect to each layer's output, geometric mean over {} seeds x 2 batches of 128 ({}). \
             With the standard init it shrinks layer after layer towards the input; Xavier's init keeps tanh flat; sigmoid vanishes either way.",
            SEEDS.len(),
            ctx.data.spec
        ),
        panels,
        columns: 3,
    }
}

/// The figure, the factor per layer by depth beside the theory, and the
/// first / last ratio by depth (or where it underflowed).
fn markdown(ctx: &Context, m: &Measured, png: &std::path::Path) -> String {
    let (theory, depths) = (theory(), &m.depths);
    let mut md = String::from("## Glorot & Bengio 2010 — gradients at initialisation\n\n");
    md.push_str(&format!("![figure]({})\n\n", relative(png, &ctx.dir)));
    md.push_str(
        "Measured factor by which the output gradient's norm shrinks per hidden layer (geometric mean over the hidden layers):\n\n",
    );
    md.push_str("| activation, init | ");
    md.push_str(&depths.iter().map(|d| format!("depth {d}")).collect::<Vec<_>>().join(" | "));
    md.push_str(" | theory |\n|---|");
    md.push_str(&"---|".repeat(depths.len() + 1));
    md.push('\n');
    for (c, &(activation, init)) in COMBOS.iter().enumerate() {
        md.push_str(&format!("| {} |", label(activation, init)));
        for &d in depths {
            let f = m.factors.iter().find(|(cc, dd, _)| *cc == c && *dd == d).map_or(f64::NAN, |x| x.2);
            md.push_str(&format!(" {f:.3} |"));
        }
        let t = match (activation, init) {
            (Activation::Tanh, Init::Standard) => format!("{theory:.3} (1/√3)"),
            (Activation::Tanh, Init::Xavier) => "≈ 1".into(),
            // sigmoid'(0) = 1/4.
            (Activation::Sigmoid, Init::Standard) => format!("{:.3} (1/(4√3))", 0.25 / 3f64.sqrt()),
            (Activation::Sigmoid, Init::Xavier) => "0.250 (1/4)".into(),
            _ => "-".into(),
        };
        md.push_str(&format!(" {t} |\n"));
    }
    md.push_str(&ratio_table(m));
    md.push_str(
        "\nWhere a gradient falls below f32's smallest normal number (about 1.2e-38) it underflows to zero: the first layers of \
         deep sigmoid nets then receive literally no gradient. Factors are measured over the layers that did not underflow.\n",
    );
    md
}

/// The first / last hidden layer ratio by pair and depth.
fn ratio_table(m: &Measured) -> String {
    let depths = &m.depths;
    let mut md = String::from("\nFirst / last hidden layer gradient ratio:\n\n| activation, init | ");
    md.push_str(&depths.iter().map(|d| format!("depth {d}")).collect::<Vec<_>>().join(" | "));
    md.push_str(" |\n|---|");
    md.push_str(&"---|".repeat(depths.len()));
    md.push('\n');
    for (c, &(activation, init)) in COMBOS.iter().enumerate() {
        md.push_str(&format!("| {} |", label(activation, init)));
        for &d in depths {
            match m.ratios[c].iter().find(|p| p[0] as usize == d) {
                Some(p) => md.push_str(&format!(" {:.2e} |", p[1])),
                None => {
                    let n = m.underflows.iter().find(|u| u.0 == c && u.1 == d).map_or(0, |u| u.2);
                    md.push_str(&format!(" underflow: 0 in f32 for layers 1–{n} |"));
                }
            }
        }
        md.push('\n');
    }
    md
}
