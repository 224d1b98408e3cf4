//! Xero's JSON dates: `/Date(1573755038314+0000)/` (milliseconds since the epoch, UTC), and in
//! a few places ISO 8601 without a zone, which Xero means as UTC. A refused element comes back
//! as it was sent, so a day may also be a bare `2026-11-21`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer};

pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let end = inner.char_indices().skip(1).find(|(_, c)| *c == '+' || *c == '-').map_or(inner.len(), |(i, _)| i);
        return Utc.timestamp_millis_opt(inner[..end].parse().ok()?).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc());
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// `#[serde(default, deserialize_with = "date::option")]`: absent or null is `None`; a text
/// that is not a Xero date is refused (naming neither the text nor where it came from).
pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).ok_or_else(|| serde::de::Error::custom("not a Xero date")),
    }
}

/// [`option`] for a calendar day: Xero writes days as midnight UTC.
pub fn day_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    Ok(option(d)?.map(|t| t.date_naive()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xero_dates_parse_in_both_forms() {
        let t = Utc.timestamp_millis_opt(1_573_755_038_314).unwrap();
        assert_eq!(parse("/Date(1573755038314+0000)/"), Some(t));
        assert_eq!(parse("/Date(1573755038314)/"), Some(t));
        assert_eq!(parse("2019-11-14T18:10:38.314"), Some(t));
        assert_eq!(parse("not a date"), None);
    }

    #[test]
    fn a_day_echoed_as_sent_is_midnight_utc() {
        let midnight = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap();
        assert_eq!(parse("2026-11-21"), Some(midnight));
        assert_eq!(parse("2026-11-31"), None);
    }
}
