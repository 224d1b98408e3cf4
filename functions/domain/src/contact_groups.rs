//! An organisation's contact groups, kept between reads: the list is offered in the connection
//! API's options, and the members of the groups chosen in settings decide which contacts come
//! back to the platform (one Xero call a group, read again daily with the reference data).
//! The list itself is read again as the reference snapshot is (after 45 minutes).

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A group's members are read again once older than this (with the daily reference data).
pub const READ_AGAIN_AFTER: Duration = Duration::hours(24);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactGroup {
    pub id: Uuid,
    pub name: String,
    /// Read only for groups chosen in settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Uuid>>,
    #[serde(with = "crate::time::fixed_opt", default, skip_serializing_if = "Option::is_none")]
    pub members_read_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactGroups {
    #[serde(with = "crate::time::fixed")]
    pub read_at: DateTime<Utc>,
    pub groups: Vec<ContactGroup>,
}

impl ContactGroups {
    /// The list is read again as the reference snapshot is: once older than its freshness.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now - self.read_at < crate::reference::FRESH_FOR
    }

    /// The groups of `chosen` whose members must be read (never read, or read too long ago).
    pub fn members_due(&self, chosen: &[Uuid], now: DateTime<Utc>) -> Vec<Uuid> {
        chosen
            .iter()
            .copied()
            .filter(|id| {
                self.groups.iter().find(|g| g.id == *id).is_none_or(|g| {
                    g.members.is_none() || g.members_read_at.is_none_or(|at| now - at >= READ_AGAIN_AFTER)
                })
            })
            .collect()
    }

    /// Every contact in any of `chosen`, as last read.
    pub fn members_of(&self, chosen: &[Uuid]) -> HashSet<Uuid> {
        self.groups
            .iter()
            .filter(|g| chosen.contains(&g.id))
            .flat_map(|g| g.members.iter().flatten().copied())
            .collect()
    }

    /// The list read again: groups still there keep the members read for them.
    pub fn relisted(&self, listed: Vec<(Uuid, String)>, now: DateTime<Utc>) -> ContactGroups {
        let groups = listed
            .into_iter()
            .map(|(id, name)| {
                let kept = self.groups.iter().find(|g| g.id == id);
                ContactGroup {
                    id,
                    name,
                    members: kept.and_then(|g| g.members.clone()),
                    members_read_at: kept.and_then(|g| g.members_read_at),
                }
            })
            .collect();
        ContactGroups { read_at: now, groups }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_read_for_chosen_groups_only_when_missing_or_a_day_old() {
        let now = crate::time::parse("2026-11-23T10:00:00.000000Z").unwrap();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let member = Uuid::new_v4();
        let groups = ContactGroups {
            read_at: now,
            groups: vec![
                ContactGroup { id: a, name: "A".into(), members: Some(vec![member]), members_read_at: Some(now) },
                ContactGroup { id: b, name: "B".into(), members: None, members_read_at: None },
            ],
        };
        assert_eq!(groups.members_due(&[a, b, c], now), vec![b, c]);
        assert_eq!(groups.members_due(&[a], now + READ_AGAIN_AFTER), vec![a]);
        assert_eq!(groups.members_of(&[a, b]), HashSet::from([member]));
        let relisted = groups.relisted(vec![(a, "A renamed".into())], now);
        assert_eq!(relisted.groups.len(), 1, "a group gone from Xero is gone");
        assert_eq!(relisted.groups[0].members, Some(vec![member]));
    }
}
