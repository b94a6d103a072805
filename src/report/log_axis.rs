//! A log10 y axis for egui_plot: values are plotted as log10, grid lines
//! sit on decades (with fainter lines at 2..9), labels read `1e-3`.

use egui_plot::{GridInput, GridMark, HoverPosition, Plot};

/// log10 of a positive value; zero and negatives map far below any data.
pub fn log10(value: f64) -> f64 {
    if value > 0.0 { value.log10() } else { -30.0 }
}

/// `1e-3` for a decade, `0.1`/`1`/`10` where plainer.
pub fn decade_label(exponent: i32) -> String {
    match exponent {
        -1 => "0.1".into(),
        0 => "1".into(),
        1 => "10".into(),
        2 => "100".into(),
        e => format!("1e{e}"),
    }
}

fn decade_marks(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let mut marks = Vec::new();
    let first = lo.floor() as i32;
    let last = hi.ceil() as i32;
    let span = (last - first).max(1);
    // Label every decade, or every other one when the range is wide.
    let stride = if span > 24 {
        4
    } else if span > 12 {
        2
    } else {
        1
    };
    // Less than a decade in view with fewer than two 1..9 marks inside (a loss between
    // 2.30 and 2.31): marks at round values instead, so the axis is numbered.
    let inside = (first..=last).flat_map(|d| (1..10).map(move |k| f64::from(d) + f64::from(k).log10())).filter(|v| (lo..=hi).contains(v));
    if hi - lo < 1.0 && inside.count() < 2 {
        return fine_marks(lo, hi);
    }
    for d in first..=last {
        let inside = f64::from(d) >= lo && f64::from(d) <= hi;
        if d % stride == 0 && inside {
            marks.push(GridMark { value: f64::from(d), step_size: f64::from(stride) });
        }
        if span <= 6 {
            for k in 2..10 {
                let v = f64::from(d) + f64::from(k).log10();
                if v > lo && v < hi {
                    // 2 and 5 count as coarser marks, so they keep their
                    // numbers where 3, 4, 6… are too close to label.
                    let step_size = if k == 2 || k == 5 { 0.3 } else { 0.1 };
                    marks.push(GridMark { value: v, step_size });
                }
            }
        }
    }
    marks
}

/// Marks at round values (1, 2 or 5 times a power of ten) between 10^lo
/// and 10^hi, placed at their log10.
fn fine_marks(lo: f64, hi: f64) -> Vec<GridMark> {
    let (_, values) = round_values(10f64.powf(lo), 10f64.powf(hi), 4.0, 20);
    values.into_iter().map(|v| GridMark { value: v.log10(), step_size: 0.1 }).collect()
}

/// Marks for a linear axis at round values (1, 2 or 5 times a power of ten)
/// about a fifth of the view apart, all of one size so that each is
/// numbered: a 93-step axis reads 0, 20, 40, 60, 80, not just 0.
pub fn linear_marks(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let (step, values) = round_values(lo, hi, 5.0, 12);
    values.into_iter().map(|value| GridMark { value, step_size: step }).collect()
}

/// The multiples of a round step (about `(b - a) / parts`) in `[a, b]`, at
/// most `max` of them, and the step.
fn round_values(a: f64, b: f64, parts: f64, max: usize) -> (f64, Vec<f64>) {
    let step = nice_step((b - a) / parts);
    let mut values = Vec::new();
    if step > 0.0 && step.is_finite() {
        let mut k = (a / step).ceil();
        while k * step <= b && values.len() < max {
            values.push(k * step);
            k += 1.0;
        }
    }
    (step, values)
}

/// 1, 2 or 5 times a power of ten, near `rough`.
fn nice_step(rough: f64) -> f64 {
    let power = 10f64.powf(rough.log10().floor());
    let m = rough / power;
    power
        * if m < 1.5 {
            1.0
        } else if m < 3.5 {
            2.0
        } else if m < 7.5 {
            5.0
        } else {
            10.0
        }
}

/// A mark's label with as many digits as the view needs to tell marks
/// apart (`2.305` when the view spans 2.30 to 2.31).
pub fn fine_number(v: f64, span: f64) -> String {
    if span > 0.0 && span < v.abs() * 0.5 && v.abs() < 1e4 && v.abs() >= 1e-3 {
        let digits = (1 - (span / 4.0).log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        short_number(v)
    }
}

/// `0.05`, `3`, `200`, `2e-4`: two significant digits, plain where readable.
pub fn short_number(v: f64) -> String {
    if (0.01..1000.0).contains(&v) {
        let digits = (1 - v.log10().floor() as i32).max(0) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.0e}")
    }
}

/// A plot whose y values are log10 of the quantity `y_name`.
pub fn log_plot<'a>(id: &str, x_name: &'a str, y_name: &'a str) -> Plot<'a> {
    Plot::new(id)
        .y_grid_spacer(decade_marks)
        .y_axis_formatter(|mark, range| {
            let rounded = mark.value.round();
            if (mark.value - rounded).abs() < 1e-9 {
                decade_label(rounded as i32)
            } else if range.end() - range.start() < 1.5 {
                // Less than two decades in view: label the 2..9 marks too.
                let span = 10f64.powf(*range.end()) - 10f64.powf(*range.start());
                fine_number(10f64.powf(mark.value), span)
            } else {
                String::new()
            }
        })
        .x_axis_label(x_name)
        .y_axis_label(format!("{y_name} (log)"))
        .label_formatter(move |position: &HoverPosition<'_>| match position {
            HoverPosition::NearDataPoint { plot_name, position, .. } => {
                Some(format!("{plot_name}\n{x_name} {:.0}\n{y_name} {:.4e}", position.x, 10f64.powf(position.y)))
            }
            HoverPosition::Elsewhere { .. } => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_numbers() {
        assert_eq!(decade_label(-3), "1e-3");
        assert_eq!(decade_label(0), "1");
        assert_eq!(short_number(0.05), "0.050");
        assert_eq!(short_number(3.0), "3.0");
        assert_eq!(short_number(200.0), "200");
        assert_eq!(short_number(2e-4), "2e-4");
        assert_eq!(log10(100.0), 2.0);
        assert!(log10(0.0) < -20.0);
    }

    /// A loss that stays between 2.30 and 2.31 still gets numbers.
    #[test]
    fn a_narrow_view_is_numbered() {
        let (lo, hi) = (2.30f64.log10(), 2.31f64.log10());
        let marks = decade_marks(GridInput { bounds: (lo, hi), base_step_size: 0.001 });
        assert!(marks.len() >= 2, "{marks:?}");
        let labels: Vec<String> = marks.iter().map(|m| fine_number(10f64.powf(m.value), 0.01)).collect();
        assert!(labels.iter().all(|l| l.starts_with("2.3")), "{labels:?}");
        let mut unique = labels.clone();
        unique.dedup();
        assert_eq!(unique.len(), labels.len(), "labels tell marks apart: {labels:?}");
        // A view of two decades keeps its decade marks.
        assert!(decade_marks(GridInput { bounds: (-1.0, 1.0), base_step_size: 0.1 }).iter().any(|m| m.value == 0.0));
    }
}
