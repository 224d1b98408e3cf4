//! What counts as an email address we can send to: the dot-atom form of RFC 5322 with a
//! DNS host name (RFC 5321), ASCII only (SES does not take SMTPUTF8), within SMTP's lengths.

/// Whether `address` is one SES can be asked to deliver to.
pub fn is_valid(address: &str) -> bool {
    if address.len() > 254 {
        return false;
    }
    let Some((local, domain)) = address.rsplit_once('@') else { return false };
    valid_local(local) && valid_domain(domain)
}

fn valid_local(local: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
    (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b)))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let top = labels.last().copied().unwrap_or_default();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && top.len() >= 2
        && !top.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn ordinary_addresses_are_valid() {
        for good in ["owner@example.com", "first.last+xero@accounts.example.co.nz", "o'brien@example.ie", "a@b.io"] {
            assert!(is_valid(good), "{good}");
        }
    }

    #[test]
    fn malformed_addresses_are_not() {
        for bad in [
            "a@b",
            "a@@b.example",
            "a b@c.example",
            "a@b..example",
            "@b.example",
            "a@-b.example",
            "a@b.example.",
            ".a@b.example",
            "a.@b.example",
            "a@b.123",
            "<a>@b.example",
            "jöran@example.se",
            "a@b_c.example",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(!is_valid(&format!("{}@example.com", "a".repeat(65))));
    }
}
