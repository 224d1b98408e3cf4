//! The integration page's single-use offers and browser sessions, keyed by digests only.

use xero_sync_domain::integration::{PageSession, PageSessionStore, SessionOffer};

use super::*;

fn offer_key(digest: &str) -> String {
    format!("PAGE_OFFER#{digest}")
}

fn session_key(digest: &str) -> String {
    format!("PAGE_SESSION#{digest}")
}

#[async_trait]
impl PageSessionStore for DynamoStore {
    async fn create_offer(&self, offer: &SessionOffer) -> Result<(), Error> {
        let item = to_item("integration page offer", offer)?;
        self.create_single_use(
            item,
            offer_key(&offer.token_digest),
            "PAGE_OFFER",
            "integration page offer",
            offer.expires_at,
        )
        .await
    }

    async fn consume_offer(
        &self,
        token_digest: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<SessionOffer, StateRefusal>, Error> {
        self.consume_single_use(offer_key(token_digest), "PAGE_OFFER", "integration page offer", now).await
    }

    async fn create_session(&self, session: &PageSession) -> Result<(), Error> {
        let item = to_item("integration page session", session)?;
        let pk = session_key(&session.id_digest);
        self.create_single_use(item, pk, "PAGE_SESSION", "integration page session", session.expires_at).await
    }

    async fn get_session(&self, id_digest: &str, now: DateTime<Utc>) -> Result<Option<PageSession>, Error> {
        let Some(item) = self.get(key(session_key(id_digest), "PAGE_SESSION")).await? else { return Ok(None) };
        let session: PageSession = from_item("integration page session", item)?;
        // DynamoDB's TTL deletes late (moto never): an expired session is gone.
        Ok((session.expires_at > now).then_some(session))
    }
}
