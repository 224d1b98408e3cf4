//! Money, quantities and rates as `Decimal`, read digit for digit from JSON.
//!
//! serde_json hands a JSON number to a visitor as an `f64`, which keeps about 15 significant
//! digits: `12345678901234.5678` would arrive as `12345678901234.568`. So a decimal asks
//! serde_json for the number's raw text instead, through serde_json's raw-value protocol (a
//! newtype struct named [`RAW_VALUE_TOKEN`], answered with a one-entry map whose value is the
//! text as it stood in the input). Other formats (DynamoDB items, where we store decimals as
//! strings) see an ordinary newtype and answer with the string or number they hold.
//!
//! A number that a `Decimal` cannot hold exactly (more than 28 digits after the point, or too
//! large) is refused, never rounded. Error texts never repeat the input.

use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// serde_json's name for a raw value (`serde_json::value::RawValue`), stable since 1.0.41.
/// `tests::numbers_are_read_digit_for_digit_through_serde_json` fails if it ever changes.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Parses a decimal written as a JSON number or as the text of one (`"12.40"`, `"1e-3"`).
pub fn parse(text: &str) -> Result<Decimal, &'static str> {
    let text = text.trim();
    let plain = text.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    // from_scientific rounds a mantissa longer than a Decimal holds: such a number is refused.
    let mantissa_digits = text.split(['e', 'E']).next().unwrap_or_default().bytes().filter(u8::is_ascii_digit).count();
    if !plain && mantissa_digits > 28 {
        return Err("has more digits than can be kept exactly (28)");
    }
    let parsed = if plain { Decimal::from_str_exact(text) } else { Decimal::from_scientific(text) };
    parsed.map_err(|_| {
        if plain && text.split('.').nth(1).is_some_and(|fraction| fraction.len() > 28) {
            "has more digits after the decimal point than can be kept exactly (28)"
        } else {
            "is not a decimal number"
        }
    })
}

struct DecimalVisitor;

impl<'de> Visitor<'de> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal number, or a string holding one")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Decimal, E> {
        rust_decimal::prelude::FromPrimitive::from_u128(v).ok_or_else(|| E::custom("is too large"))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Decimal, E> {
        rust_decimal::prelude::FromPrimitive::from_i128(v).ok_or_else(|| E::custom("is too large"))
    }

    /// Only formats without the raw text get here; their float is taken at its shortest
    /// round-trip text, which is what they wrote for up to 15 significant digits.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        parse(&v.to_string()).map_err(E::custom)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(self)
    }

    /// serde_json's raw value: one entry whose value is the JSON text of the number or string.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
        let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? else {
            return Err(de::Error::custom("is not a decimal number"));
        };
        if key != RAW_VALUE_TOKEN {
            return Err(de::Error::custom("is an object, not a decimal number"));
        }
        let raw: std::borrow::Cow<'de, str> = map.next_value()?;
        let raw = raw.trim();
        if raw.starts_with('"') {
            let text: String = serde_json::from_str(raw).map_err(|_| de::Error::custom("is not a decimal number"))?;
            return parse(&text).map_err(de::Error::custom);
        }
        if !raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(de::Error::custom("is not a decimal number or a string holding one"));
        }
        parse(raw).map_err(de::Error::custom)
    }
}

/// `#[serde(deserialize_with = "xero_sync_domain::decimal::deserialize")]`
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_newtype_struct(RAW_VALUE_TOKEN, DecimalVisitor)
}

/// A decimal as a field type, for the containers below.
struct Exact(Decimal);

impl<'de> serde::Deserialize<'de> for Exact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize(d).map(Exact)
    }
}

/// `#[serde(default, deserialize_with = "xero_sync_domain::decimal::option::deserialize")]`
pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Ok(<Option<Exact> as serde::Deserialize>::deserialize(d)?.map(|e| e.0))
    }
}

/// `#[serde(default, deserialize_with = "xero_sync_domain::decimal::vec::deserialize")]`
pub mod vec {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Decimal>, D::Error> {
        Ok(<Vec<Exact> as serde::Deserialize>::deserialize(d)?.into_iter().map(|e| e.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Line {
        #[serde(deserialize_with = "super::deserialize")]
        amount: Decimal,
        #[serde(default, deserialize_with = "super::option::deserialize")]
        discount: Option<Decimal>,
        #[serde(default, deserialize_with = "super::vec::deserialize")]
        parts: Vec<Decimal>,
    }

    #[test]
    fn numbers_are_read_digit_for_digit_through_serde_json() {
        let line: Line =
            serde_json::from_str(r#"{"amount": 12345678901234.5678, "discount": 0.1, "parts": [1e-3, "2.50"]}"#)
                .unwrap();
        assert_eq!(line.amount.to_string(), "12345678901234.5678", "a float would have rounded it");
        assert_eq!(line.discount.unwrap().to_string(), "0.1");
        assert_eq!(line.parts.iter().map(Decimal::to_string).collect::<Vec<_>>(), ["0.001", "2.50"]);
        let none: Line = serde_json::from_str(r#"{"amount": "1", "discount": null}"#).unwrap();
        assert_eq!(none.discount, None);
    }

    #[test]
    fn too_many_digits_are_refused_rather_than_rounded() {
        let e = serde_json::from_str::<Line>(r#"{"amount": 0.10000000000000000000000000000001}"#).unwrap_err();
        assert!(e.to_string().contains("more digits after the decimal point"), "{e}");
        assert!(serde_json::from_str::<Line>(r#"{"amount": 1e40}"#).is_err());
        assert!(serde_json::from_str::<Line>(r#"{"amount": 0.12345678901234567890123456789e0}"#).is_err());
    }

    #[test]
    fn errors_do_not_repeat_the_input() {
        for bad in [r#"{"amount": "12.s3cr3t"}"#, r#"{"amount": true}"#, r#"{"amount": {"s3cr3t": 1}}"#] {
            let e = serde_json::from_str::<Line>(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
        }
    }

    #[test]
    fn the_path_of_a_bad_number_is_named_through_serde_path_to_error() {
        let de = &mut serde_json::Deserializer::from_str(r#"{"amount": "x"}"#);
        let e = serde_path_to_error::deserialize::<_, Line>(de).unwrap_err();
        assert_eq!(e.path().to_string(), "amount");
        let de = &mut serde_json::Deserializer::from_str(r#"{"amount": 1.00000000000000000001}"#);
        let line: Line = serde_path_to_error::deserialize(de).unwrap();
        assert_eq!(line.amount.to_string(), "1.00000000000000000001");
    }
}
