//! Where each Xero grant's token set is kept (Secrets Manager in AWS: see `xero_sync_aws::secrets`).

use async_trait::async_trait;

use crate::error::Error;
use crate::model::GrantId;
use crate::tokens::TokenSet;

#[async_trait]
pub trait TokenVault: Send + Sync {
    async fn load(&self, grant: &GrantId) -> Result<Option<TokenSet>, Error>;
    /// Writes the set as the grant's current version, creating the secret on first use.
    async fn store(&self, tokens: &TokenSet) -> Result<(), Error>;
    /// Writes a refreshed set over the grant's current one; `false` if the secret is gone (the
    /// grant was ended meanwhile), which a refresh must not bring back.
    async fn replace(&self, tokens: &TokenSet) -> Result<bool, Error>;
    /// Removes the secret at once (no recovery window: a disconnected grant's tokens are
    /// no longer used and worth keeping nowhere). Deleting what is not there succeeds.
    async fn delete(&self, grant: &GrantId) -> Result<(), Error>;
}
