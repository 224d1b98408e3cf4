//! What counts as an email address: one we can send to ourselves ([`is_valid`]: the dot-atom
//! form of RFC 5322 with a DNS host name, ASCII only as SES does not take SMTPUTF8, within
//! SMTP's lengths), or one a customer may have in Xero ([`is_plausible`]: international
//! addresses included; Xero sends those, not us).

/// Whether `address` looks like an address at all: something, `@`, a domain with a dot, no
/// spaces. For customers' addresses, which go to Xero and may be international.
pub fn is_plausible(address: &str) -> bool {
    address.len() <= 254
        && address.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

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

    #[test]
    fn international_addresses_are_plausible_for_customers_though_we_do_not_send_to_them() {
        for ok in ["info@bücher.de", "jöran@example.se", "owner@example.com"] {
            assert!(super::is_plausible(ok), "{ok}");
        }
        for bad in ["not an email", "a@b", "@b.example", "a@b.example.", "a b@c.example"] {
            assert!(!super::is_plausible(bad), "{bad}");
        }
    }
}
