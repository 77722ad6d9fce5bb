//! Typed condition values: decimals, dates, booleans, bytes, IP blocks and ARNs.
//!
//! Policy values and request values arrive as text; each operator family parses both sides
//! with the same functions here, so a policy and a request always agree on what a value means.

use std::cmp::Ordering;
use std::net::IpAddr;

use base64::Engine as _;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// An exact decimal number, borrowed from its text: compared without rounding, whatever its
/// size, and parsed without allocating (request values are parsed on every decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal<'a> {
    negative: bool,
    /// Integer digits without leading zeros.
    int: &'a str,
    /// Fraction digits without trailing zeros.
    frac: &'a str,
}

impl<'a> Decimal<'a> {
    /// Parses `-?digits(.digits)?`, the numbers AWS accepts in numeric conditions.
    pub(crate) fn parse(text: &'a str) -> Option<Decimal<'a>> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match rest.split_once('.') {
            Some((i, f)) => (i, f),
            None => (rest, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty()
            || !digits(int)
            || !digits(frac)
            || (rest.contains('.') && frac.is_empty())
        {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        let zero = int.is_empty() && frac.is_empty();
        Some(Decimal {
            negative: negative && !zero,
            int,
            frac,
        })
    }

    fn cmp_magnitude(&self, other: &Decimal) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl Ord for Decimal<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Parses a date as AWS accepts it: ISO 8601 (`2024-05-01T12:00:00Z`, with or without
/// fraction, offset or time) or integer seconds since the Unix epoch. Returns nanoseconds
/// since the epoch.
pub(crate) fn parse_date(text: &str) -> Option<i128> {
    let t = text.trim();
    if !t.is_empty()
        && t.trim_start_matches('-')
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        let secs: i64 = t.parse().ok()?;
        return Some(i128::from(secs) * 1_000_000_000);
    }
    if let Ok(dt) = OffsetDateTime::parse(t, &Rfc3339) {
        return Some(dt.unix_timestamp_nanos());
    }
    if let Ok(dt) = OffsetDateTime::parse(t, &Iso8601::DEFAULT) {
        return Some(dt.unix_timestamp_nanos());
    }
    if let Ok(dt) = PrimitiveDateTime::parse(t, &Iso8601::DEFAULT) {
        return Some(dt.assume_utc().unix_timestamp_nanos());
    }
    if let Ok(d) = Date::parse(t, &Iso8601::DEFAULT) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

/// Parses `true` or `false`, ignoring case, as AWS does.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Decodes standard base64, as `BinaryEquals` values are written.
pub(crate) fn parse_binary(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// An IPv4 or IPv6 block: an address and a prefix length. An IPv4-mapped IPv6 block
/// (`::ffff:10.0.0.0/104`) is stored as the IPv4 block it maps (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Parses `203.0.113.0/24`, `2001:db8::/32`, or a bare address (a block of one).
    pub(crate) fn parse(text: &str) -> Option<IpBlock> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (a, Some(p.parse::<u8>().ok()?))
            }
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return None;
        }
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix >= 96
        {
            return Some(IpBlock {
                network: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Some(IpBlock {
            network: addr,
            prefix,
        })
    }

    /// True when `addr` is inside the block. IPv4 and IPv4-mapped IPv6 addresses are the same
    /// address.
    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        fn mask32(prefix: u8) -> u32 {
            u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0)
        }
        fn mask128(prefix: u8) -> u128 {
            u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0)
        }
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                u32::from(net) & mask32(self.prefix) == u32::from(a) & mask32(self.prefix)
            }
            (IpAddr::V4(net), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| {
                u32::from(net) & mask32(self.prefix) == u32::from(a) & mask32(self.prefix)
            }),
            (IpAddr::V6(net), a) => {
                let a = match a {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                    IpAddr::V6(v6) => v6,
                };
                u128::from(net) & mask128(self.prefix) == u128::from(a) & mask128(self.prefix)
            }
        }
    }
}

/// Parses a request's IP address value.
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse().ok()
}

/// True for a 12-digit AWS account id.
pub(crate) fn is_account_id(v: &str) -> bool {
    v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit())
}

/// Splits a policy's ARN value into six parts like [`split_arn`], except that colons inside
/// policy variables (`${aws:PrincipalAccount}`) do not separate parts.
pub(crate) fn split_arn_template(text: &str) -> Option<[&str; 6]> {
    let mut out = [""; 6];
    let mut start = 0;
    let mut part = 0;
    let mut in_var = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && part < 5 {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => in_var = true,
            b'}' => in_var = false,
            b':' if !in_var => {
                out[part] = &text[start..i];
                part += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if part < 5 {
        return None;
    }
    out[5] = &text[start..];
    Some(out)
}

/// Splits an ARN into its six colon-separated parts (`arn`, partition, service, region,
/// account, resource); the resource part keeps any further colons.
pub(crate) fn split_arn(text: &str) -> Option<[&str; 6]> {
    let mut parts = text.splitn(6, ':');
    let mut out = [""; 6];
    for slot in &mut out {
        *slot = parts.next()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal<'_> {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn decimals_compare_exactly() {
        assert!(d("10") > d("9"));
        assert!(d("-10") < d("-9"));
        assert_eq!(d("1.50"), d("01.5"));
        assert_eq!(d("-0"), d("0.000"));
        assert!(d("9007199254740993") > d("9007199254740992"));
        assert!(d("0.1") < d("0.10001"));
        for bad in ["", "-", "1.", ".5", "1e3", "0x10", "1,0", " 1", "++1"] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn dates_accept_iso_and_epoch() {
        let z = parse_date("2020-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_date("1577836800"), Some(z));
        assert_eq!(parse_date("2020-01-01"), Some(z));
        assert_eq!(parse_date("2020-01-01T01:00:00+01:00"), Some(z));
        assert_eq!(parse_date("2020-01-01T00:00:00.000Z"), Some(z));
        assert_eq!(parse_date("2020-01-01T00:00:00"), Some(z));
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("2020-13-01").is_none());
    }

    #[test]
    fn ip_blocks() {
        let b = IpBlock::parse("203.0.113.0/24").unwrap();
        assert!(b.contains("203.0.113.77".parse().unwrap()));
        assert!(!b.contains("203.0.114.1".parse().unwrap()));
        assert!(b.contains("::ffff:203.0.113.9".parse().unwrap()));
        let v6 = IpBlock::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(
            IpBlock::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            IpBlock::parse("10.0.0.1")
                .unwrap()
                .contains("10.0.0.1".parse().unwrap())
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "::/129",
            "10.0.0/8",
            "x",
            "10.0.0.0/+8",
        ] {
            assert!(IpBlock::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn arn_templates_keep_variables_whole() {
        let p = split_arn_template("arn:aws:sns:us-east-1:${aws:PrincipalAccount}:t:x").unwrap();
        assert_eq!(p[4], "${aws:PrincipalAccount}");
        assert_eq!(p[5], "t:x");
        assert!(split_arn_template("arn:${a:b:c}:x").is_none());
    }

    #[test]
    fn arns_split_into_six() {
        let p = split_arn("arn:aws:logs:us-east-1:123:log-group:/a:*").unwrap();
        assert_eq!(p[5], "log-group:/a:*");
        assert!(split_arn("arn:aws:s3").is_none());
    }
}
