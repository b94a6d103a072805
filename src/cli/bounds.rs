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
}
