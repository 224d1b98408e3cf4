//! How the platform proves a request is its own: a timestamped HMAC-SHA256 signature, shared by
//! the invoice webhook and the connection API, and a signed connect link.
//!
//! # Request signatures
//!
//! Header `X-XeroSync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`. The HMAC is keyed with a
//! shared secret and computed over
//!
//! * the invoice webhook: `"{t}.{raw body}"`;
//! * a connection API call: `"{t}.{METHOD}.{path and query}.{raw body}"`, so a signature cannot be
//!   replayed against another account's URL. The path is signed **percent-decoded**
//!   (`/accounts/acct@home/connections`, never `acct%40home`), as API Gateway's HTTP API hands
//!   it to the function; the query string is signed exactly as sent (`?a=1&b=x%20y`), without
//!   the `?` when there is none.
//!
//! A signature older or newer than [`TOLERANCE`] is refused. Several secrets may be active at once
//! (rotation: add the new one, switch the platform, remove the old one); the header may carry
//! several `v1=` values and one match with any active secret suffices. Comparison is constant-time.
//!
//! # Connect links
//!
//! `GET /connect?account_id=..&return_to=..&email=..&expires=<unix seconds>&sig=<hex>` where `sig`
//! is HMAC-SHA256 over `"connect-link.v1\n{account_id}\n{return_to}\n{email}\n{expires}"` (absent
//! optional values are empty strings). [`connect_link_signature`] builds it.

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::digest::hex;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-xerosync-signature";
pub const TOLERANCE: Duration = Duration::minutes(5);

type HmacSha256 = Hmac<Sha256>;

/// A shared secret; never printed.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([redacted])")
    }
}

/// Why a signature was refused; the wording is safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-XeroSync-Signature header is missing")]
    Missing,
    #[error("the X-XeroSync-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature timestamp is more than 5 minutes from now")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

/// What is signed besides the timestamp.
pub enum Signed<'a> {
    Webhook { body: &'a [u8] },
    Api { method: &'a str, path_and_query: &'a str, body: &'a [u8] },
}

impl Signed<'_> {
    fn mac(&self, secret: &SigningSecret, t: i64) -> [u8; 32] {
        let t = t.to_string();
        match self {
            Signed::Webhook { body } => secret.mac(&[t.as_bytes(), b".", body]),
            Signed::Api { method, path_and_query, body } => {
                secret.mac(&[t.as_bytes(), b".", method.as_bytes(), b".", path_and_query.as_bytes(), b".", body])
            }
        }
    }
}

/// The header value the platform sends (also what our tests and examples use).
pub fn sign(secret: &SigningSecret, at: DateTime<Utc>, signed: &Signed<'_>) -> String {
    let t = at.timestamp();
    format!("t={t},v1={}", hex(&signed.mac(secret, t)))
}

/// Checks a signature header against every active secret.
pub fn verify(
    header: Option<&str>,
    secrets: &[SigningSecret],
    now: DateTime<Utc>,
    signed: &Signed<'_>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed("t is not a number"))?)
            }
            Some(("v1", v)) => candidates.push(unhex(v).ok_or(SignatureError::Malformed("v1 is not 64 hex digits"))?),
            // Unknown schemes are skipped so a later scheme can be introduced alongside v1.
            Some(_) => {}
            None => return Err(SignatureError::Malformed("expected t=...,v1=...")),
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed("no t="))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed("no v1="));
    }
    let at = DateTime::from_timestamp(t, 0).ok_or(SignatureError::Malformed("t is out of range"))?;
    if (now - at).abs() > TOLERANCE {
        return Err(SignatureError::Stale);
    }
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = signed.mac(secret, t);
        for candidate in &candidates {
            matched |= expected.ct_eq(candidate);
        }
    }
    if bool::from(matched) { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// The `sig` of a connect link; see the module documentation for the exact message.
pub fn connect_link_signature(
    secret: &SigningSecret,
    account_id: &str,
    return_to: Option<&str>,
    email: Option<&str>,
    expires: i64,
) -> String {
    let message = format!(
        "connect-link.v1\n{account_id}\n{}\n{}\n{expires}",
        return_to.unwrap_or_default(),
        email.unwrap_or_default()
    );
    hex(&secret.mac(&[message.as_bytes()]))
}

/// The integration page's own Connect button: lets `/integration/connect` mint a fresh connect
/// link for `account_id` until `expires`, without the session cookie (the button may open a
/// popup, where the embedded page's partitioned cookie is not sent).
pub fn page_connect_ticket(secret: &SigningSecret, account_id: &str, expires: i64) -> String {
    let message = format!("integration-connect.v1\n{account_id}\n{expires}");
    hex(&secret.mac(&[message.as_bytes()]))
}

/// Constant-time check of a [`page_connect_ticket`] against every active secret.
pub fn verify_page_connect_ticket(secrets: &[SigningSecret], ticket: &str, account_id: &str, expires: i64) -> bool {
    let Some(given) = unhex(ticket) else { return false };
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = unhex(&page_connect_ticket(secret, account_id, expires)).expect("own hex");
        matched |= expected.ct_eq(&given);
    }
    bool::from(matched)
}

/// Constant-time check of a connect link's `sig` against every active secret.
pub fn verify_connect_link(
    secrets: &[SigningSecret],
    sig: &str,
    account_id: &str,
    return_to: Option<&str>,
    email: Option<&str>,
    expires: i64,
) -> bool {
    let Some(given) = unhex(sig) else { return false };
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = unhex(&connect_link_signature(secret, account_id, return_to, email, expires)).expect("own hex");
        matched |= expected.ct_eq(&given);
    }
    bool::from(matched)
}

/// 64 hex digits, lower case only: one signature has one spelling, so a claim on it (a connect
/// link is single use) cannot be dodged by changing a digit's case.
fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_connect_ticket_holds_only_for_its_account_and_expiry() {
        let secret = SigningSecret::new(b"k".repeat(32));
        let ticket = page_connect_ticket(&secret, "acct-1", 1_800_000_000);
        let secrets = [SigningSecret::new(b"other".repeat(8)), secret];
        assert!(verify_page_connect_ticket(&secrets, &ticket, "acct-1", 1_800_000_000));
        assert!(!verify_page_connect_ticket(&secrets, &ticket, "acct-2", 1_800_000_000));
        assert!(!verify_page_connect_ticket(&secrets, &ticket, "acct-1", 1_800_000_001));
        assert!(!verify_page_connect_ticket(&secrets, "zz", "acct-1", 1_800_000_000));
    }
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap()
    }

    fn secret(s: &str) -> SigningSecret {
        SigningSecret::new(s.as_bytes())
    }

    const BODY: &[u8] = br#"{"event":"invoice.created"}"#;

    #[test]
    fn a_webhook_signature_is_hmac_over_timestamp_dot_body() {
        let header = sign(&secret("k1"), now(), &Signed::Webhook { body: BODY });
        let t = now().timestamp();
        let mut mac = HmacSha256::new_from_slice(b"k1").unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(BODY);
        assert_eq!(header, format!("t={t},v1={}", hex(&mac.finalize().into_bytes())));
        assert_eq!(verify(Some(&header), &[secret("k1")], now(), &Signed::Webhook { body: BODY }), Ok(()));
    }

    #[test]
    fn any_active_secret_verifies_during_rotation() {
        let header = sign(&secret("new"), now(), &Signed::Webhook { body: BODY });
        assert_eq!(
            verify(Some(&header), &[secret("old"), secret("new")], now(), &Signed::Webhook { body: BODY }),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), &[secret("old")], now(), &Signed::Webhook { body: BODY }),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_tampered_body_or_stale_timestamp_is_refused() {
        let header = sign(&secret("k1"), now(), &Signed::Webhook { body: BODY });
        assert_eq!(
            verify(Some(&header), &[secret("k1")], now(), &Signed::Webhook { body: b"{}" }),
            Err(SignatureError::Mismatch)
        );
        let late = now() + TOLERANCE + Duration::seconds(1);
        assert_eq!(
            verify(Some(&header), &[secret("k1")], late, &Signed::Webhook { body: BODY }),
            Err(SignatureError::Stale)
        );
        let early = now() - TOLERANCE - Duration::seconds(1);
        assert_eq!(
            verify(Some(&header), &[secret("k1")], early, &Signed::Webhook { body: BODY }),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn an_api_signature_is_bound_to_method_and_path() {
        let signed = Signed::Api { method: "GET", path_and_query: "/accounts/a/connections", body: b"" };
        let header = sign(&secret("k1"), now(), &signed);
        assert_eq!(verify(Some(&header), &[secret("k1")], now(), &signed), Ok(()));
        let other = Signed::Api { method: "GET", path_and_query: "/accounts/b/connections", body: b"" };
        assert_eq!(verify(Some(&header), &[secret("k1")], now(), &other), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        let signed = Signed::Webhook { body: BODY };
        let k = [secret("k1")];
        assert_eq!(verify(None, &k, now(), &signed), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some("garbage"), &k, now(), &signed),
            Err(SignatureError::Malformed("expected t=...,v1=..."))
        );
        assert_eq!(
            verify(Some("t=abc,v1=00"), &k, now(), &signed),
            Err(SignatureError::Malformed("t is not a number"))
        );
        assert_eq!(
            verify(Some("t=1,v1=zz"), &k, now(), &signed),
            Err(SignatureError::Malformed("v1 is not 64 hex digits"))
        );
        assert_eq!(verify(Some("t=1"), &k, now(), &signed), Err(SignatureError::Malformed("no v1=")));
        let huge = format!("t={},v1={}", i64::MAX, "0".repeat(64));
        assert_eq!(verify(Some(&huge), &k, now(), &signed), Err(SignatureError::Malformed("t is out of range")));
    }

    #[test]
    fn connect_links_verify_only_with_every_field_unchanged() {
        let k = [secret("link")];
        let sig = connect_link_signature(&k[0], "acct-1", Some("https://app.example.com/x"), None, 1_800_000_000);
        assert!(verify_connect_link(&k, &sig, "acct-1", Some("https://app.example.com/x"), None, 1_800_000_000));
        assert!(!verify_connect_link(&k, &sig, "acct-2", Some("https://app.example.com/x"), None, 1_800_000_000));
        assert!(!verify_connect_link(&k, &sig, "acct-1", Some("https://evil.example.com/"), None, 1_800_000_000));
        assert!(!verify_connect_link(
            &k,
            &sig,
            "acct-1",
            Some("https://app.example.com/x"),
            Some("a@b.c"),
            1_800_000_000
        ));
        assert!(!verify_connect_link(&k, &sig, "acct-1", Some("https://app.example.com/x"), None, 1_800_000_001));
        assert!(!verify_connect_link(&[secret("link")], "not-hex", "acct-1", None, None, 0));
        let upper = sig.to_uppercase();
        assert!(!verify_connect_link(&k, &upper, "acct-1", Some("https://app.example.com/x"), None, 1_800_000_000));
        let plus = format!("+{}", &sig[1..]);
        assert!(!verify_connect_link(&k, &plus, "acct-1", Some("https://app.example.com/x"), None, 1_800_000_000));
    }

    #[test]
    fn the_readmes_shell_recipe_gives_the_same_connect_link_signature() {
        // printf 'connect-link.v1\n%s\n%s\n%s\n%s' acct-42 https://app.example.com/settings/xero '' 1800000000 \
        //   | openssl dgst -sha256 -hmac s3cret -r
        let sig = connect_link_signature(
            &secret("s3cret"),
            "acct-42",
            Some("https://app.example.com/settings/xero"),
            None,
            1_800_000_000,
        );
        assert_eq!(sig, "9a519daea5c484ed1735b635e87de1209446d2359339cdde323d0a5feef54584");
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(format!("{:?}", secret("hunter2")), "SigningSecret([redacted])");
    }
}
