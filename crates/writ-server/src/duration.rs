//! Durations as people write them on command lines and in JSON: `90s`, `10m`, `1h`, `7d`.

use time::Duration;

/// Parses `<digits><unit>` with unit `s`, `m`, `h` or `d`. Zero and negative values are
/// refused, and so are lifetimes past 10 years, which are mistakes rather than policy.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: write a whole number and a unit, such as 90s, 10m, 1h or 7d"
        )
    };
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(unit_at);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let seconds = n.checked_mul(seconds_per).ok_or_else(bad)?;
    if seconds == 0 {
        return Err(format!(
            "invalid duration {text:?}: it must be longer than zero"
        ));
    }
    if seconds > 10 * 365 * 86_400 {
        return Err(format!("invalid duration {text:?}: at most 3650d"));
    }
    Ok(Duration::seconds(seconds))
}

/// Writes a duration in the largest unit that divides it: `3600` seconds is `1h`.
pub fn format(d: Duration) -> String {
    let s = d.whole_seconds();
    for (unit, per) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s != 0 && s % per == 0 {
            return format!("{}{unit}", s / per);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_refuses_nonsense() {
        assert_eq!(parse("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse("10m").unwrap(), Duration::minutes(10));
        assert_eq!(parse("1h").unwrap(), Duration::hours(1));
        assert_eq!(parse("7d").unwrap(), Duration::days(7));
        for bad in [
            "",
            "10",
            "m",
            "0s",
            "-5m",
            "1.5h",
            "10 m",
            "5w",
            "99999999999999999999d",
            "4000d",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(format(Duration::hours(1)), "1h");
        assert_eq!(format(Duration::seconds(90)), "90s");
        assert_eq!(format(Duration::minutes(5)), "5m");
    }
}
