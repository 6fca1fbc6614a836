//! Typed units: durations (`"250ms"`, `"30s"`, `"1h30m"`) and byte sizes
//! (`"512MiB"`, `"1GB"`), and integers with a declared unit (`"x-unit": "ms"`).
//! A bare `30` for a timeout is never silently read: it might mean seconds or milliseconds.

use std::time::Duration;

/// `12.5` as (125, 1): digits and the count of them after the point.
/// Exact, unlike a float; at most 30 digits.
fn decimal(s: &str) -> Option<(u128, u32)> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let all = int.len() + frac.len();
    if all == 0 || all > 30 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    Some((digits.parse().ok()?, frac.len() as u32))
}

/// `mantissa / 10^scale * unit`, rounded to the nearest integer; saturates.
fn scaled((mantissa, scale): (u128, u32), unit: u128) -> u128 {
    let div = 10u128.pow(scale);
    match mantissa.checked_mul(unit) {
        Some(p) => p / div + u128::from((p % div) * 2 >= div),
        None => u128::MAX,
    }
}

/// Go-style durations: one or more `<number><unit>` with units
/// ns, us, µs, ms, s, m, h, d. Exact to the nanosecond; beyond 584 years
/// (`u64::MAX` nanoseconds) it saturates.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n = decimal(&rest[..num_end])?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].trim();
        total = total.saturating_add(scaled(n, unit_nanos(unit)?));
        rest = &rest[unit_end..];
    }
    Some(Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX)))
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    })
}

/// A duration written by a user where a unit is required (`"250ms"`,
/// `"2s"`): a bare number is refused with both readings.
pub fn duration_param(s: &str) -> Result<Duration, String> {
    if s.trim().parse::<f64>().is_ok() {
        return Err(format!("bare number {s} for a duration: write \"{s}s\" or \"{s}ms\""));
    }
    parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration such as \"500ms\" or \"2s\""))
}

/// `1h30m`, `250ms`, `2.5s`: the shortest exact spelling.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos.is_multiple_of(1_000_000_000) {
        let mut secs = d.as_secs();
        let mut out = String::new();
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
            if secs >= size {
                out.push_str(&format!("{}{unit}", secs / size));
                secs %= size;
            }
        }
        return out;
    }
    if nanos.is_multiple_of(1_000_000) {
        return format!("{}ms", nanos / 1_000_000);
    }
    if nanos.is_multiple_of(1_000) {
        return format!("{}us", nanos / 1_000);
    }
    format!("{nanos}ns")
}

/// `512MiB`, `1GB`, `100 KiB`, `42B`; exact, saturating at `u64::MAX`.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    if num_end == 0 {
        return None;
    }
    let n = decimal(&s[..num_end])?;
    let mult = byte_unit(s[num_end..].trim())?;
    Some(u64::try_from(scaled(n, u128::from(mult))).unwrap_or(u64::MAX))
}

fn byte_unit(unit: &str) -> Option<u64> {
    Some(match unit {
        "B" | "b" => 1,
        "kB" | "KB" | "k" | "K" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "TB" | "T" => 1_000_000_000_000,
        "KiB" | "Ki" => 1 << 10,
        "MiB" | "Mi" => 1 << 20,
        "GiB" | "Gi" => 1 << 30,
        "TiB" | "Ti" => 1 << 40,
        _ => return None,
    })
}

pub fn format_bytes(b: u64) -> String {
    for (unit, size) in [
        ("TiB", 1u64 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ] {
        if b >= size && b.is_multiple_of(size) {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}B")
}

/// The unit a schema property declares with `x-unit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// A string like `"30s"`.
    Duration,
    /// A string like `"512MiB"`.
    Bytes,
    /// An integer counting this many nanoseconds (`ms`, `s`, ...).
    TimeInt(&'static str, f64),
    /// An integer counting this many bytes (`B`, `KiB`, ...).
    ByteInt(&'static str, u64),
}

impl Unit {
    pub fn from_schema(s: &str) -> Option<Unit> {
        Some(match s {
            "duration" => Unit::Duration,
            "bytes" | "size" => Unit::Bytes,
            "ns" => Unit::TimeInt("ns", 1.0),
            "us" => Unit::TimeInt("us", 1e3),
            "ms" => Unit::TimeInt("ms", 1e6),
            "s" => Unit::TimeInt("s", 1e9),
            "m" => Unit::TimeInt("m", 60e9),
            "h" => Unit::TimeInt("h", 3600e9),
            "B" => Unit::ByteInt("B", 1),
            "KiB" => Unit::ByteInt("KiB", 1 << 10),
            "MiB" => Unit::ByteInt("MiB", 1 << 20),
            "GiB" => Unit::ByteInt("GiB", 1 << 30),
            _ => return None,
        })
    }
}

/// The verdict on one value.
#[derive(Debug, PartialEq)]
pub struct UnitError {
    pub message: String,
    pub help: Option<String>,
}

/// A value in its canonical magnitude: nanoseconds or bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Magnitude {
    Nanos(f64),
    Bytes(u64),
}

fn fmt_nanos(n: f64) -> String {
    format_duration(Duration::from_nanos(n.max(0.0).round() as u64))
}

/// Read a bound (`x-minimum` / `x-maximum`) in the unit of the property.
fn bound(unit: Unit, v: &serde_json::Value) -> Option<Magnitude> {
    match (unit, v) {
        (Unit::Duration | Unit::TimeInt(..), serde_json::Value::String(s)) => {
            parse_duration(s).map(|d| Magnitude::Nanos(d.as_nanos() as f64))
        }
        (Unit::TimeInt(_, per), serde_json::Value::Number(n)) => n.as_f64().map(|x| Magnitude::Nanos(x * per)),
        (Unit::Bytes | Unit::ByteInt(..), serde_json::Value::String(s)) => parse_bytes(s).map(Magnitude::Bytes),
        (Unit::ByteInt(_, per), serde_json::Value::Number(n)) => {
            n.as_u64().map(|x| Magnitude::Bytes(x.saturating_mul(per)))
        }
        _ => None,
    }
}

/// Check one value against its unit and bounds.
pub fn check(
    unit: Unit,
    value: &serde_json::Value,
    min: Option<&serde_json::Value>,
    max: Option<&serde_json::Value>,
) -> Result<Magnitude, UnitError> {
    match magnitude(unit, value)? {
        Some(mag) => within_bounds(unit, value, mag, min, max),
        // Other types are the schema's business (its `type` reports them).
        None => Ok(Magnitude::Bytes(0)),
    }
}

/// What `value` measures in `unit`, or why it is not a `unit` at all;
/// `None` for a JSON type that is not a number or a string.
fn magnitude(unit: Unit, value: &serde_json::Value) -> Result<Option<Magnitude>, UnitError> {
    use serde_json::Value as J;
    let err = |message: String, help: Option<String>| Err(UnitError { message, help });
    let mag = match (unit, value) {
        (Unit::Duration, J::Number(n)) => {
            let shown = n.to_string();
            return err(
                format!("bare number {shown} for a duration: write \"{shown}s\" or \"{shown}ms\""),
                Some(format!(
                    "a duration needs a unit; \"{shown}s\" is {shown} seconds, \"{shown}ms\" is {shown} milliseconds"
                )),
            );
        }
        (Unit::Duration, J::String(s)) => match parse_duration(s) {
            Some(d) => Magnitude::Nanos(d.as_nanos() as f64),
            None => {
                return err(
                    format!("{s:?} is not a duration"),
                    Some("write a number and a unit: \"250ms\", \"30s\", \"5m\", \"1h30m\"".into()),
                );
            }
        },
        (Unit::Bytes, J::Number(n)) => {
            let shown = n.to_string();
            return err(
                format!("bare number {shown} for a byte size: write \"{shown}B\", \"{shown}KiB\" or \"{shown}MiB\""),
                Some("a size needs a unit: B, kB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024)".into()),
            );
        }
        (Unit::Bytes, J::String(s)) => match parse_bytes(s) {
            Some(b) => Magnitude::Bytes(b),
            None => {
                return err(
                    format!("{s:?} is not a byte size"),
                    Some("write a number and a unit: \"512MiB\", \"1GB\", \"64KiB\"".into()),
                );
            }
        },
        (Unit::TimeInt(name, per), J::Number(n)) => match n.as_f64() {
            Some(x) => Magnitude::Nanos(x * per),
            None => return err(format!("{n} is not a number of {name}"), None),
        },
        (Unit::TimeInt(name, per), J::String(s)) => {
            let help = parse_duration(s).map(|d| {
                let n = d.as_nanos() as f64 / per;
                format!("this field counts {name}: write {n}")
            });
            return err(format!("expected an integer number of {name}, found {s:?}"), help);
        }
        (Unit::ByteInt(name, per), J::Number(n)) => match n.as_u64() {
            Some(x) => Magnitude::Bytes(x.saturating_mul(per)),
            None => return err(format!("{n} is not a whole number of {name}"), None),
        },
        (Unit::ByteInt(name, per), J::String(s)) => {
            let help = parse_bytes(s).map(|b| format!("this field counts {name}: write {}", b / per));
            return err(format!("expected an integer number of {name}, found {s:?}"), help);
        }
        _ => return Ok(None),
    };
    Ok(Some(mag))
}

/// `mag` against the schema's `minimum` / `maximum`, read in the same unit.
fn within_bounds(
    unit: Unit,
    value: &serde_json::Value,
    mag: Magnitude,
    min: Option<&serde_json::Value>,
    max: Option<&serde_json::Value>,
) -> Result<Magnitude, UnitError> {
    let err = |message: String, help: Option<String>| Err(UnitError { message, help });
    let shown = |m: Magnitude| match m {
        Magnitude::Nanos(n) => fmt_nanos(n),
        Magnitude::Bytes(b) => format_bytes(b),
    };
    let lt = |a: Magnitude, b: Magnitude| match (a, b) {
        (Magnitude::Nanos(x), Magnitude::Nanos(y)) => x < y,
        (Magnitude::Bytes(x), Magnitude::Bytes(y)) => x < y,
        _ => false,
    };
    let raw = value.to_string();
    if let Some(lo) = min.and_then(|m| bound(unit, m))
        && lt(mag, lo)
    {
        let help = match unit {
            Unit::TimeInt(name, per) => other_reading(&raw, name, per, lo, max.and_then(|m| bound(unit, m))),
            _ => None,
        };
        return err(
            format!(
                "{} is below the minimum {}",
                with_unit(&raw, unit, mag, &shown),
                shown(lo)
            ),
            help,
        );
    }
    if let Some(hi) = max.and_then(|m| bound(unit, m))
        && lt(hi, mag)
    {
        let help = match unit {
            Unit::TimeInt(name, per) => other_reading(
                &raw,
                name,
                per,
                min.and_then(|m| bound(unit, m)).unwrap_or(Magnitude::Nanos(0.0)),
                Some(hi),
            ),
            _ => None,
        };
        return err(
            format!(
                "{} is above the maximum {}",
                with_unit(&raw, unit, mag, &shown),
                shown(hi)
            ),
            help,
        );
    }
    Ok(mag)
}

fn with_unit(raw: &str, unit: Unit, mag: Magnitude, shown: &dyn Fn(Magnitude) -> String) -> String {
    match unit {
        Unit::TimeInt(name, _) | Unit::ByteInt(name, _) => {
            let s = shown(mag);
            if s == format!("{raw}{name}") {
                s
            } else {
                format!("{raw}{name} ({s})")
            }
        }
        _ => shown(mag),
    }
}

/// What an integer would have meant in the neighbouring unit (seconds for
/// milliseconds and back), when that reading fits the bounds.
fn other_reading(raw: &str, name: &str, per: f64, lo: Magnitude, hi: Option<Magnitude>) -> Option<String> {
    let x: f64 = raw.parse().ok()?;
    let (other, other_per) = match name {
        "ms" => ("seconds", 1e9),
        "s" => ("milliseconds", 1e6),
        "us" => ("milliseconds", 1e6),
        "m" => ("seconds", 1e9),
        _ => return None,
    };
    let as_other = x * other_per;
    let Magnitude::Nanos(lo) = lo else { return None };
    let fits = as_other >= lo && hi.is_none_or(|h| matches!(h, Magnitude::Nanos(h) if as_other <= h));
    let rewritten = as_other / per;
    let rewritten = if rewritten.fract() == 0.0 {
        format!("{}", rewritten as i64)
    } else {
        format!("{rewritten}")
    };
    fits.then(|| {
        format!(
            "if {raw} was meant as {other} ({}), write {rewritten}",
            fmt_nanos(as_other)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_duration_parameter_without_a_unit_is_refused_with_both_readings() {
        assert!(duration_param("30").unwrap_err().contains("\"30s\" or \"30ms\""));
        assert_eq!(duration_param("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn parses_durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("30 parsecs"), None);
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("1GB"), Some(1_000_000_000));
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_bytes(512 << 20), "512MiB");
    }

    #[test]
    fn fails_when_timeout_has_no_unit() {
        let e = check(Unit::Duration, &json!(30), None, None).unwrap_err();
        assert_eq!(e.message, "bare number 30 for a duration: write \"30s\" or \"30ms\"");
    }

    #[test]
    fn milliseconds_below_minimum_say_what_seconds_would_mean() {
        let e = check(
            Unit::TimeInt("ms", 1e6),
            &json!(30),
            Some(&json!(100)),
            Some(&json!(120000)),
        )
        .unwrap_err();
        assert_eq!(e.message, "30ms is below the minimum 100ms");
        assert_eq!(e.help.unwrap(), "if 30 was meant as seconds (30s), write 30000");
    }

    #[test]
    fn duration_bounds_use_units() {
        assert!(check(Unit::Duration, &json!("5s"), Some(&json!("100ms")), Some(&json!("60s"))).is_ok());
        let e = check(Unit::Duration, &json!("10m"), None, Some(&json!("60s"))).unwrap_err();
        assert_eq!(e.message, "10m is above the maximum 1m");
    }

    use proptest::prelude::*;

    proptest! {
        // Any text: a duration, a size, or None; never a panic.
        #[test]
        fn unit_parsers_answer_any_text_without_panic(s in "\\PC{0,24}|[0-9.]{1,40}(ns|ms|s|m|h|d|B|KiB|GB)?") {
            let _ = parse_duration(&s);
            let _ = parse_bytes(&s);
        }

        // What envgate writes for a duration or a size reads back exactly.
        #[test]
        fn formatted_durations_and_sizes_read_back_exactly(nanos in 0u64..u64::MAX, bytes in any::<u64>()) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Some(d));
            prop_assert_eq!(parse_bytes(&format_bytes(bytes)), Some(bytes));
        }

        // Any unit, value and bounds: a verdict, never an overflow.
        #[test]
        fn checking_any_value_against_any_bounds_never_panics(
            unit in prop_oneof![Just("duration"), Just("bytes"), Just("ms"), Just("s"), Just("GiB"), Just("B")],
            value in prop_oneof![any::<u64>().prop_map(|n| json!(n)), any::<i64>().prop_map(|n| json!(n)),
                                 any::<f64>().prop_map(|f| json!(f)), "\\PC{0,12}".prop_map(|s| json!(s))],
            lo in any::<u64>(), hi in "[0-9]{1,22}(ms|s|h|GiB|B)",
        ) {
            let unit = Unit::from_schema(unit).unwrap();
            let _ = check(unit, &value, Some(&json!(lo)), Some(&json!(hi)));
        }
    }
}
