//! `depthlab classify`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::CliError;
use crate::classify::Classifier;
use crate::train::RunStatus;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// A run folder written by `depthlab train`.
    #[arg(long)]
    pub run: PathBuf,
    /// The image to classify (PNG, JPEG, BMP, GIF, WebP, TIFF).
    #[arg(long)]
    pub image: PathBuf,
    /// How many classes to print.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn classify(args: &ClassifyArgs) -> Result<(), CliError> {
    let classifier = Classifier::open(&args.run)?;
    for warning in &classifier.run.warnings {
        eprintln!("warning: {warning}");
    }
    match classifier.run.status {
        RunStatus::Interrupted => eprintln!(
            "warning: {} was interrupted (its process ended without finishing); the weights are from the last epoch it completed",
            args.run.display()
        ),
        RunStatus::Running => eprintln!("warning: {} is still training; the weights are from its last completed epoch", args.run.display()),
        _ => {}
    }
    let (input, predictions) = classifier.classify_file(&args.image)?;
    let top: Vec<_> = predictions.into_iter().take(args.top.max(1)).collect();
    if args.json {
        let object = json!({
            "run": args.run,
            "image": args.image,
            "input": [input.channels, input.height, input.width],
            "predictions": top,
        });
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else {
        println!(
            "{} as {}x{}x{} by {} ({})",
            args.image.display(),
            input.channels,
            input.height,
            input.width,
            classifier.run.arch.name,
            args.run.display()
        );
        for (rank, p) in top.iter().enumerate() {
            let bar = "#".repeat((p.probability * 40.0).round() as usize);
            println!("{:>2}. {:<14} {:>6.2}%  {bar}", rank + 1, p.class, p.probability * 100.0);
        }
    }
    Ok(())
}
