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
    #[arg(long, required_unless_present_any = ["point", "row"], conflicts_with_all = ["point", "row"])]
    pub image: Option<PathBuf>,
    /// The point to classify, for a run trained on 2-D data (spiral, moons, …): X,Y.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "row")]
    pub point: Option<String>,
    /// The row to classify, for a run trained on CSV data: its feature values
    /// V1,V2,… in the training file's column order, without the label.
    #[arg(long, allow_hyphen_values = true)]
    pub row: Option<String>,
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
    let (what, shape, predictions) = match (&args.image, &args.point) {
        (None, None) if let Some(row) = &args.row => {
            let predictions = classifier.predict_row(row)?;
            let features = classifier.features().map_or(0, |f| f.names.len());
            (format!("the row {row}"), json!([features, 1, 1]), predictions)
        }
        (_, Some(point)) => {
            let (x, y) = parse_point(point)?;
            (format!("the point ({x}, {y})"), json!([2]), classifier.predict_point(x, y)?)
        }
        (Some(image), None) => {
            let (input, predictions) = classifier.classify_file(image)?;
            (
                format!("{} as {}x{}x{}", image.display(), input.channels, input.height, input.width),
                json!([input.channels, input.height, input.width]),
                predictions,
            )
        }
        (None, None) => return Err(CliError::new(2, "give an image (--image FILE), a point (--point X,Y) or a row (--row V1,V2,…)")),
    };
    let top: Vec<_> = predictions.into_iter().take(args.top.max(1)).collect();
    if args.json {
        let object = json!({
            "run": args.run,
            "image": args.image,
            "point": args.point,
            "row": args.row,
            "input": shape,
            "predictions": top,
        });
        println!("{}", serde_json::to_string_pretty(&object)?);
    } else {
        println!("{what} by {} ({})", classifier.run.arch.name, args.run.display());
        for (rank, p) in top.iter().enumerate() {
            let bar = "#".repeat((p.probability * 40.0).round() as usize);
            println!("{:>2}. {:<14} {:>6.2}%  {bar}", rank + 1, p.class, p.probability * 100.0);
        }
    }
    Ok(())
}

/// `X,Y` as two finite numbers.
fn parse_point(text: &str) -> Result<(f32, f32), CliError> {
    let bad = || CliError::new(2, format!("--point {text}: give two finite numbers, X,Y (e.g. --point 0.5,-1.2)"));
    let (x, y) = text.split_once(',').ok_or_else(bad)?;
    let (x, y): (f32, f32) = (x.trim().parse().map_err(|_| bad())?, y.trim().parse().map_err(|_| bad())?);
    if !(x.is_finite() && y.is_finite()) {
        return Err(bad());
    }
    Ok((x, y))
}
