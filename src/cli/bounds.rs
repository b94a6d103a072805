//! Checks of the counts and Slurm values a user types, as clap value
//! parsers: each is refused at parse time (exit 2, the limit in the
//! message), before anything is loaded or allocated.

use crate::experiment::SlurmValueError;

/// A count out of its stated range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CountError {
    #[error("{flag} must be a whole number from {min} to {max}, not {text:?}")]
    NotANumber { flag: &'static str, min: usize, max: usize, text: String },
    #[error("{flag} must be {min} to {max}, not {text}")]
    OutOfRange { flag: &'static str, min: usize, max: usize, text: String },
    #[error("{flag} must be odd, so that the grid's centre is the trained weights: {value} has no centre point")]
    Even { flag: &'static str, value: usize },
}

/// A parser for `flag`: a whole number from `min` to `max`.
pub fn count(flag: &'static str, min: usize, max: usize) -> impl Fn(&str) -> Result<usize, CountError> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let digits = text.trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CountError::NotANumber { flag, min, max, text: text.to_string() });
        }
        match digits.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(CountError::OutOfRange { flag, min, max, text: digits.to_string() }),
        }
    }
}

/// A parser for `flag`: an odd whole number from 1 to `max`.
pub fn odd_count(flag: &'static str, max: usize) -> impl Fn(&str) -> Result<usize, CountError> + Clone + Send + Sync + 'static {
    let parse = count(flag, 1, max);
    move |text: &str| match parse(text)? {
        n if n % 2 == 0 => Err(CountError::Even { flag, value: n }),
        n => Ok(n),
    }
}

/// `--slurm-time`.
pub fn slurm_time(text: &str) -> Result<String, SlurmValueError> {
    crate::experiment::check_time(text).map(|()| text.to_string())
}

/// `--slurm-partition`.
pub fn slurm_partition(text: &str) -> Result<String, SlurmValueError> {
    crate::experiment::check_partition(text).map(|()| text.to_string())
}

/// `--slurm-mem`.
pub fn slurm_mem(text: &str) -> Result<String, SlurmValueError> {
    crate::experiment::check_mem(text).map(|()| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_within_their_range_only() {
        let draws = count("--draws", 1, 10);
        assert_eq!(draws("1"), Ok(1));
        assert_eq!(draws("10"), Ok(10));
        for bad in ["0", "11", "-1", "", "1.5", "abc", "18446744073709551615", "18446744073709551616", "1\n2", "+3"] {
            let error = draws(bad).unwrap_err().to_string();
            assert!(error.starts_with("--draws must be") && error.contains("10"), "{bad:?}: {error}");
        }
        let grid = odd_count("--grid", 201);
        assert_eq!(grid("21"), Ok(21));
        assert!(matches!(grid("20"), Err(CountError::Even { value: 20, .. })));
        assert!(matches!(grid("203"), Err(CountError::OutOfRange { .. })));
    }

    /// Text a user might type for a count or a Slurm value: numbers of
    /// every size and sign, decimals, blanks, lists, shell syntax, Unicode.
    fn typed() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            (0u32..100_000).prop_map(|n| n.to_string()),
            "[0-9]{15,40}",
            "[ +\\-]?[0-9]{0,6}(\\.[0-9]{0,3})?[ ]?",
            "[0-9,: \\-]{0,24}",
            "[0-9]{1,3}[KMGTkmgtx]?",
            ".{0,40}",
            "[a-z0-9_.,;$`|&()\\n\\-]{0,20}",
        ]
    }

    /// Any text for a count (`--draws`, `--samples`, `--grid`, `--seeds`,
    /// `--jobs`, …) or a depth list is a number inside its stated range or
    /// an error naming the flag and the range: never a panic, never a value
    /// past the limit; the sweep it plans is bounded.
    #[test]
    fn any_typed_count_is_bounded_or_refused_in_words() {
        use crate::experiment::{MAX_DEPTHS, MAX_RUNS, SweepConfig, max_depth, parse_depths};
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 2000, ..Default::default() });
        runner
            .run(&typed(), |text| {
                for (flag, min, max) in [("--draws", 1, 10_000), ("--samples", 1, 100_000), ("--seeds", 1, 1000), ("--jobs", 0, 1024)] {
                    match count(flag, min, max)(&text) {
                        Ok(n) => assert!((min..=max).contains(&n) && text.trim().parse::<usize>() == Ok(n), "{flag} {text:?} -> {n}"),
                        Err(e) => assert!(e.to_string().starts_with(flag) && e.to_string().contains(&max.to_string()), "{e}"),
                    }
                }
                match odd_count("--grid", 201)(&text) {
                    Ok(n) => assert!(n % 2 == 1 && n <= 201, "--grid {text:?} -> {n}"),
                    Err(e) => assert!(e.to_string().starts_with("--grid"), "{e}"),
                }
                match parse_depths(&text) {
                    Ok(depths) => {
                        assert!(!depths.is_empty() && depths.len() <= MAX_DEPTHS);
                        assert!(depths.iter().all(|&d| (1..=max_depth()).contains(&d)), "{text:?} -> {depths:?}");
                        // With every family and the most seeds, the sweep is
                        // refused or within its run limit.
                        let families = crate::arch::presets::Family::ALL.to_vec();
                        let runs = families.len() * depths.len() * 1000;
                        let config = SweepConfig {
                            families,
                            depths,
                            seeds: 1000,
                            train: Default::default(),
                            out: "sweep".into(),
                            resume: false,
                            jobs: 1,
                        };
                        match config.check() {
                            Ok(()) => assert!(runs <= MAX_RUNS),
                            Err(e) => assert!(e.to_string().contains(&MAX_RUNS.to_string()), "{e}"),
                        }
                    }
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
                Ok(())
            })
            .unwrap();
    }

    /// Any text for a Slurm value is accepted only when it cannot end the
    /// `#SBATCH` line or run as shell (no line break, no shell-special
    /// character) and is short; anything else is refused in words.
    #[test]
    fn any_typed_slurm_value_is_safe_or_refused_in_words() {
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config { cases: 2000, ..Default::default() });
        runner
            .run(&typed(), |text| {
                for (flag, parse) in [
                    ("--slurm-time", slurm_time as fn(&str) -> Result<String, SlurmValueError>),
                    ("--slurm-partition", slurm_partition),
                    ("--slurm-mem", slurm_mem),
                ] {
                    match parse(&text) {
                        Ok(value) => {
                            assert!(value.len() <= 64, "{flag} {text:?}");
                            assert!(value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.,:".contains(c)), "{flag} accepted {text:?}");
                        }
                        Err(e) => assert!(e.to_string().starts_with(flag), "{e}"),
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
