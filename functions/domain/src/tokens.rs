//! Xero token sets. The tokens are secret newtypes (see [`crate::secret`]): their `Debug`
//! prints `[redacted]` and they have no `Display`, so a token cannot reach a log line by
//! accident; [`AccessToken::secret`] is the one way to the text.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::GrantId;

crate::secret::secret_type!(
    /// A bearer token for Xero's API; lives 30 minutes.
    AccessToken
);
crate::secret::secret_type!(
    /// What gets the next access token; single use, rotated on every refresh.
    RefreshToken
);

/// What one grant's secret holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenSet {
    pub grant_id: GrantId,
    pub access_token: AccessToken,
    /// Single use: Xero rotates it on every refresh.
    pub refresh_token: RefreshToken,
    #[serde(with = "crate::time::fixed")]
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(with = "crate::time::fixed")]
    pub obtained_at: DateTime<Utc>,
}

impl TokenSet {
    /// Whether the access token is expired or will be within `margin`.
    pub fn expires_within(&self, now: DateTime<Utc>, margin: Duration) -> bool {
        self.expires_at - margin <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn tokens() -> TokenSet {
        let now = Utc.with_ymd_and_hms(2026, 11, 21, 6, 0, 0).unwrap();
        TokenSet {
            grant_id: GrantId::parse("2b0d3a4e-1c55-4d0e-9b7e-3f7f8a1e2d11").unwrap(),
            access_token: AccessToken::new("access-secret-value".into()),
            refresh_token: RefreshToken::new("refresh-secret-value".into()),
            expires_at: now + Duration::minutes(30),
            scopes: vec!["offline_access".into()],
            obtained_at: now,
        }
    }

    #[test]
    fn a_token_set_never_prints_its_tokens() {
        let printed = format!("{:?}", tokens());
        assert!(!printed.contains("access-secret-value"), "{printed}");
        assert!(!printed.contains("refresh-secret-value"), "{printed}");
    }

    #[test]
    fn expiry_counts_the_margin() {
        let t = tokens();
        assert!(!t.expires_within(t.obtained_at, Duration::minutes(5)));
        assert!(t.expires_within(t.obtained_at + Duration::minutes(26), Duration::minutes(5)));
    }

    #[test]
    fn the_stored_json_keeps_the_tokens() {
        let json = serde_json::to_string(&tokens()).unwrap();
        let back: TokenSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back.refresh_token.secret(), "refresh-secret-value");
    }
}
