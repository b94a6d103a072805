//! `depthlab export`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::export::{self, ExportFormat};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A run folder written by `depthlab train`.
    #[arg(long)]
    pub run: PathBuf,
    /// pytorch: model.py, weights.safetensors, predict.py and README.md;
    /// safetensors: the weights alone.
    #[arg(long, value_enum, default_value_t = Format::Pytorch)]
    pub format: Format,
    /// The folder to write; refused when it already holds files, unless --overwrite.
    #[arg(long)]
    pub out: PathBuf,
    /// Write into an output folder that holds files, replacing the exported ones.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Pytorch,
    Safetensors,
}

pub fn export(args: &ExportArgs) -> Result<(), CliError> {
    let format = match args.format {
        Format::Pytorch => ExportFormat::Pytorch,
        Format::Safetensors => ExportFormat::Safetensors,
    };
    let exported = export::export(&args.run, format, &args.out, args.overwrite)
        .map_err(|e| CliError::new(if e.is_refusal() { 2 } else { 1 }, e.to_string()))?;
    for warning in &exported.warnings {
        eprintln!("warning: {warning}");
    }
    println!(
        "exported {} ({} tensors, {} trained values) to {}:",
        args.run.display(),
        exported.tensors,
        exported.values,
        args.out.display()
    );
    for file in &exported.files {
        println!("  {}", file.display());
    }
    if let Some(net_class) = &exported.net_class {
        println!("network class {net_class} in model.py; try: python {} IMAGE", args.out.join(export::PREDICT_FILE).display());
    }
    Ok(())
}
