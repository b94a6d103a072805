//! Small helpers shared by the library: seeded randomness, atomic files,
//! allocator settings.

pub mod alloc;
pub mod fault;
pub mod fsio;
pub mod lock;
pub mod rng;
pub mod threads;

/// `269722` → `269.7k`, `1727962` → `1.73M`.
pub fn format_params(params: usize) -> String {
    if params >= 1_000_000 {
        format!("{:.2}M", params as f64 / 1e6)
    } else if params >= 1_000 {
        format!("{:.1}k", params as f64 / 1e3)
    } else {
        params.to_string()
    }
}

/// Seconds as `H:MM:SS` (rounded to the second).
pub fn format_secs(secs: f64) -> String {
    let secs = secs.round() as u64;
    format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// `YYYYMMDD-HHMMSS` (UTC) for a Unix time, used in folder names.
pub fn timestamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_civil_dates() {
        assert_eq!(super::timestamp(0), "19700101-000000");
        assert_eq!(super::timestamp(1_795_833_930), "20261128-024530");
    }
}
