//! Small conversions shared by the modules: Xero's date formats, money as JSON numbers.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// Xero's Microsoft JSON date, e.g. `/Date(1573755038314+0000)/`.
pub fn ms_date(t: DateTime<Utc>) -> String {
    format!("/Date({}+0000)/", t.timestamp_millis())
}

pub fn ms_date_of_day(d: NaiveDate) -> String {
    ms_date(day_start(d))
}

pub fn day_start(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// The `DateString` companion field, e.g. `2019-11-14T00:00:00`.
pub fn date_string(d: NaiveDate) -> String {
    d.format("%Y-%m-%dT00:00:00").to_string()
}

/// The identity API's timestamps, .NET style with seven fractional digits and no zone:
/// `2019-12-07T18:46:19.5165400`.
pub fn dotnet_time(t: DateTime<Utc>) -> String {
    format!("{}.{:07}", t.format("%Y-%m-%dT%H:%M:%S"), t.timestamp_subsec_nanos() / 100)
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// Parses `/Date(ms+0000)/`, RFC 3339, `YYYY-MM-DDTHH:MM:SS[.fff]` or `YYYY-MM-DD`.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let digits: String = inner
            .chars()
            .enumerate()
            .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
            .map(|(_, c)| c)
            .collect();
        let ms: i64 = digits.parse().ok()?;
        return Utc.timestamp_millis_opt(ms).single();
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(day_start)
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    parse_datetime(s).map(|t| t.date_naive())
}

pub fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Money goes out as a JSON number (the spec types it `number`); the arithmetic stays decimal.
pub fn money(d: Decimal) -> Value {
    let text = d.normalize().to_string();
    serde_json::Number::from_str(&text).map(Value::Number).unwrap_or(Value::Null)
}

pub fn parse_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => {
            let t = n.to_string();
            Decimal::from_str(&t).ok().or_else(|| Decimal::from_scientific(&t).ok())
        }
        Value::String(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

/// Case-insensitive field lookup, as Xero accepts `contactID` as well as `ContactID`.
pub fn field<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(name)
        .or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
        .filter(|v| !v.is_null())
}

pub fn str_field(obj: &Value, name: &str) -> Option<String> {
    match field(obj, name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn bool_field(obj: &Value, name: &str) -> Option<bool> {
    match field(obj, name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

pub fn uuid_field(obj: &Value, name: &str) -> Option<Result<uuid::Uuid, String>> {
    str_field(obj, name).filter(|s| !s.is_empty()).map(|s| uuid::Uuid::parse_str(&s).map_err(|_| s))
}

/// Decimal serde for the typed reference data: out as a JSON number, in from number or string.
pub mod dec {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&super::money(*d), s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        super::parse_decimal(&v).ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {v}")))
    }
}

pub mod dec_opt {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::dec::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let v = Option::<serde_json::Value>::deserialize(d)?;
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => super::parse_decimal(&v)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a decimal: {v}"))),
        }
    }
}
