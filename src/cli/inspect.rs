//! `depthlab presets` and `depthlab inspect`.

use clap::Args;
use serde_json::json;

use super::{CliError, LayerFlags};
use crate::arch::{Shape, presets, resolve};

#[derive(Args, Debug)]
pub struct PresetsArgs {
    /// Print a JSON list instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A preset name (resnet-20, plain-56, highway-mlp-50, …) or an architecture JSON file.
    pub arch: String,
    /// Input shape CxHxW.
    #[arg(long, default_value = "3x32x32")]
    pub input: String,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub layers: LayerFlags,
}

const CIFAR: Shape = Shape::Map { channels: 3, height: 32, width: 32 };

pub fn presets(args: &PresetsArgs) -> Result<(), CliError> {
    let mut rows = Vec::new();
    for name in presets::featured() {
        let arch = presets::build(&name, CIFAR).map_err(|e| CliError::new(1, e))?;
        let analysis = arch.analyse(CIFAR, 10);
        rows.push((name, analysis.depth, analysis.params, arch.description));
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(name, depth, params, summary)| json!({"name": name, "depth": depth, "params": params, "summary": summary}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!("{:<22} {:>6} {:>12}  summary (3x32x32 input, 10 classes)", "name", "depth", "parameters");
    for (name, depth, params, summary) in rows {
        println!("{name:<22} {depth:>6} {:>12}  {summary}", crate::util::format_params(params));
    }
    println!(
        "\nEvery family takes other depths too: resnet-N and plain-N for N = 6n+2, highway-mlp-N for any N ≥ 3, fractal-C for C = 1..5, …"
    );
    Ok(())
}

pub fn inspect(args: &InspectArgs) -> Result<(), CliError> {
    let input = Shape::parse(&args.input).map_err(|e| CliError::new(2, e))?;
    let mut arch = resolve(&args.arch, input).map_err(|e| CliError::new(2, e.to_string()))?;
    arch.apply_overrides(&args.layers.overrides());
    let analysis = arch.analyse(input, args.classes);
    if args.json {
        let blocks: Vec<_> = arch
            .blocks
            .iter()
            .zip(&analysis.entries)
            .enumerate()
            .map(|(i, (block, info))| {
                json!({
                    "index": i + 1,
                    "kind": block.kind.tag(),
                    "repeat": block.repeat,
                    "output_shape": info.output.map(|s| s.dims()),
                    "params": info.params,
                })
            })
            .collect();
        let errors: Vec<_> = analysis.errors.iter().map(|e| json!({"block": e.block, "message": e.to_string()})).collect();
        let object = json!({
            "name": arch.name,
            "depth": analysis.depth,
            "params": analysis.params,
            "input": input.dims(),
            "output": analysis.output.map(|s| s.dims()),
            "blocks": blocks,
            "errors": errors,
        });
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else {
        println!("{}  (input {input}, {} classes)", arch.name, args.classes);
        println!("{:>4}  {:<22} {:>7}  {:<12} {:>12}", "#", "kind", "repeat", "output", "parameters");
        for (i, (block, info)) in arch.blocks.iter().zip(&analysis.entries).enumerate() {
            let output = info.output.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
            println!("{:>4}  {:<22} {:>7}  {:<12} {:>12}", i + 1, block.kind.title(), format!("x{}", block.repeat), output, info.params);
        }
        println!(
            "depth {} (weight layers on the longest path), {} parameters ({})",
            analysis.depth,
            analysis.params,
            crate::util::format_params(analysis.params)
        );
    }
    if analysis.is_valid() {
        Ok(())
    } else {
        for e in &analysis.errors {
            eprintln!("error: {e}");
        }
        Err(CliError::new(
            2,
            format!("{} is invalid ({} error{})", arch.name, analysis.errors.len(), if analysis.errors.len() == 1 { "" } else { "s" }),
        ))
    }
}
