//! The two timestamp forms SigV4 reads: `X-Amz-Date` (`20150830T123600Z`, ISO 8601 basic)
//! and the HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`, IMF-fixdate).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// `t` in UTC as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u32::from(d - b'0')))
}

fn build(year: u32, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<OffsetDateTime> {
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses exactly `YYYYMMDDTHHMMSSZ`.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    build(
        digits(&b[0..4])?,
        digits(&b[4..6])?,
        digits(&b[6..8])?,
        digits(&b[9..11])?,
        digits(&b[11..13])?,
        digits(&b[13..15])?,
    )
}

/// Parses exactly the IMF-fixdate form of RFC 9110, `Sun, 30 Aug 2015 12:36:00 GMT` (the
/// weekday is required to be one of the seven names, not checked against the date).
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let b = s.as_bytes();
    if b.len() != 29
        || !DAYS.contains(&&b[0..3])
        || &b[3..5] != b", "
        || b[7] != b' '
        || b[11] != b' '
        || b[16] != b' '
        || b[19] != b':'
        || b[22] != b':'
        || &b[25..] != b" GMT"
    {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == &b[8..11])? as u32 + 1;
    build(
        digits(&b[12..16])?,
        month,
        digits(&b[5..7])?,
        digits(&b[17..19])?,
        digits(&b[20..22])?,
        digits(&b[23..25])?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(t.unix_timestamp(), 1_440_938_160);
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(t));
        for bad in [
            "20150830T123600",
            "20150830 123600Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "2015083OT123600Z",
            "+0150830T123600Z",
            "20150830T246000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 UTC"), None);
        assert_eq!(parse_http_date("Sun, 30 Foo 2015 12:36:00 GMT"), None);
    }
}
