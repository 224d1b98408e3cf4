//! Time is UTC everywhere, and stored timestamps have one fixed width.
//!
//! DynamoDB compares strings byte by byte, and chrono's default RFC 3339 output drops trailing
//! zero fractions ("…12Z" sorts after "…12.5Z"). Every stored timestamp therefore goes through
//! [`format`]: microseconds, always six digits, always `Z`.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// The current time at the precision it is stored with, so a value written and read back is
/// equal to the one written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Where "now" comes from, so tests can share a clock with the Xero emulator.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        now()
    }
}

pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// `#[serde(with = "crate::time::fixed")]`
pub mod fixed {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        super::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "crate::time::fixed_opt", default)]`
pub mod fixed_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&super::format(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(raw) => super::parse(&raw).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stored_timestamps_sort_as_strings_in_time_order() {
        let whole = Utc.with_ymd_and_hms(2026, 11, 21, 5, 26, 12).unwrap();
        let later = whole + chrono::Duration::milliseconds(500);
        assert_eq!(format(whole), "2026-11-21T05:26:12.000000Z");
        assert!(format(whole) < format(later));
    }

    #[test]
    fn now_survives_a_round_trip_through_storage() {
        let t = now();
        assert_eq!(parse(&format(t)).unwrap(), t);
    }

    #[test]
    fn offsets_are_read_as_utc() {
        let t = parse("2026-11-21T15:26:12+10:00").unwrap();
        assert_eq!(format(t), "2026-11-21T05:26:12.000000Z");
    }
}
