//! An organisation's contact groups from Xero, read as little as will do: the list once a day,
//! and the members of a chosen group (one call each) once a day, kept between reads.

use std::collections::HashSet;

use serde::Deserialize;
use uuid::Uuid;
use xero_sync_domain::contact_groups::ContactGroups;
use xero_sync_domain::model::Connection;
use xero_sync_xero::{ApiRequest, XeroError};

use crate::App;
use crate::token_provider::TokenError;

#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(rename = "ContactGroups", default)]
    groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
struct Group {
    #[serde(rename = "ContactGroupID")]
    id: Uuid,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Contacts", default)]
    contacts: Vec<Member>,
}

#[derive(Debug, Deserialize)]
struct Member {
    #[serde(rename = "ContactID")]
    id: Uuid,
}

/// The active groups: as kept while fresh, else read from Xero (one call) and kept.
pub async fn listed(app: &App, connection: &Connection) -> Result<ContactGroups, TokenError> {
    let kept = app.services.store.get_contact_groups(&connection.key()).await?;
    match kept {
        Some(kept) if kept.is_fresh(app.now()) => Ok(kept),
        kept => read_list(app, connection, kept).await,
    }
}

/// The active groups as Xero lists them now (one call), kept with the members already read.
pub async fn read_list(
    app: &App,
    connection: &Connection,
    kept: Option<ContactGroups>,
) -> Result<ContactGroups, TokenError> {
    let key = connection.key();
    let now = app.now();
    let answer: Answer = app.tokens.get(connection, &ApiRequest::new("/ContactGroups")).await?.body;
    let listed = answer.groups.into_iter().map(|g| (g.id, g.name)).collect();
    let kept = kept.unwrap_or(ContactGroups { read_at: now, groups: Vec::new() });
    let groups = kept.relisted(listed, now);
    app.services.store.put_contact_groups(&key, &groups).await?;
    Ok(groups)
}

/// Every contact in any of the `chosen` groups; a group's members are read (one call) when
/// never read or a day old. A chosen group Xero no longer has has no members.
pub async fn members(app: &App, connection: &Connection, chosen: &[Uuid]) -> Result<HashSet<Uuid>, TokenError> {
    let mut groups = listed(app, connection).await?;
    let now = app.now();
    let due = groups.members_due(chosen, now);
    for id in &due {
        let path = format!("/ContactGroups/{id}");
        let members: Vec<Uuid> = match app.tokens.get::<Answer>(connection, &ApiRequest::new(&path)).await {
            Ok(answer) => answer.body.groups.into_iter().flat_map(|g| g.contacts).map(|m| m.id).collect(),
            Err(TokenError::Xero(XeroError::NotFound(_))) => Vec::new(),
            Err(e) => return Err(e),
        };
        if let Some(group) = groups.groups.iter_mut().find(|g| g.id == *id) {
            group.members = Some(members);
            group.members_read_at = Some(now);
        }
    }
    if !due.is_empty() {
        app.services.store.put_contact_groups(&connection.key(), &groups).await?;
    }
    Ok(groups.members_of(chosen))
}
