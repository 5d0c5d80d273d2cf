//! The one reading of durations written in flags: a whole number, then a unit. Each flag
//! chooses the units it takes (a request timeout in days or a token lifetime in milliseconds
//! is more likely a typo than a wish) and words its own error; the syntax and the arithmetic
//! are shared.

use std::time::Duration;

/// A unit a duration may be written in: its suffix and how long one of it is.
#[derive(Clone, Copy, Debug)]
pub struct Unit {
    pub suffix: &'static str,
    pub length: Duration,
}

pub const MILLISECONDS: Unit = Unit {
    suffix: "ms",
    length: Duration::from_millis(1),
};
pub const SECONDS: Unit = Unit {
    suffix: "s",
    length: Duration::from_secs(1),
};
pub const MINUTES: Unit = Unit {
    suffix: "m",
    length: Duration::from_secs(60),
};
pub const HOURS: Unit = Unit {
    suffix: "h",
    length: Duration::from_secs(3600),
};
pub const DAYS: Unit = Unit {
    suffix: "d",
    length: Duration::from_secs(86_400),
};
pub const WEEKS: Unit = Unit {
    suffix: "w",
    length: Duration::from_secs(7 * 86_400),
};

/// Why a text is not a duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    /// Digits only, where a unit is required.
    NoUnit,
    /// No whole number (or one beyond `u64`) before the unit.
    NoNumber,
    /// A unit that is not one of those allowed.
    UnknownUnit,
}

/// Reads `text` as digits, optional spaces and one of `units`; digits alone are counted in
/// `bare`, or refused if it is None. A duration too long for [`Duration`] saturates at
/// `u64::MAX` seconds: the caller decides whether that is "forever" or an error.
pub fn parse(text: &str, units: &[Unit], bare: Option<Unit>) -> Result<Duration, DurationError> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let suffix = suffix.trim_start();
    let unit = match (suffix, bare) {
        ("", Some(bare)) => Some(bare),
        ("", None) => return Err(DurationError::NoUnit),
        (suffix, _) => units.iter().copied().find(|unit| unit.suffix == suffix),
    };
    let number: u64 = number.parse().map_err(|_| DurationError::NoNumber)?;
    let unit = unit.ok_or(DurationError::UnknownUnit)?;
    Ok(times(unit.length, number))
}

/// `length * count`, saturating at `u64::MAX` whole seconds.
fn times(length: Duration, count: u64) -> Duration {
    const NANOS_PER_SECOND: u128 = 1_000_000_000;
    let nanos = length.as_nanos() * u128::from(count);
    match u64::try_from(nanos / NANOS_PER_SECOND) {
        Ok(seconds) => Duration::new(seconds, (nanos % NANOS_PER_SECOND) as u32),
        Err(_) => Duration::from_secs(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Unit; 6] = [MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS, WEEKS];

    #[test]
    fn number_and_unit() {
        assert_eq!(parse("500ms", &ALL, None), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2w", &ALL, None), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse("30 s", &ALL, None), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse("30", &ALL, Some(SECONDS)),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(parse("30", &ALL, None), Err(DurationError::NoUnit));
        assert_eq!(parse("", &ALL, None), Err(DurationError::NoUnit));
        assert_eq!(parse("d", &ALL, None), Err(DurationError::NoNumber));
        assert_eq!(parse("-1s", &ALL, None), Err(DurationError::NoNumber));
        assert_eq!(parse("1y", &ALL, None), Err(DurationError::UnknownUnit));
        assert_eq!(
            parse("1d", &[SECONDS], None),
            Err(DurationError::UnknownUnit)
        );
    }

    #[test]
    fn too_long_saturates() {
        let longest = Duration::from_secs(u64::MAX);
        assert_eq!(parse(&format!("{}h", u64::MAX), &ALL, None), Ok(longest));
        assert_eq!(
            parse(&format!("{}s", u64::MAX), &ALL, None),
            Ok(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            parse(&format!("{}ms", u64::MAX), &ALL, None),
            Ok(Duration::from_millis(u64::MAX))
        );
    }
}
