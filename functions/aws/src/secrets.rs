//! Token sets in AWS Secrets Manager: one secret per Xero grant, each refresh a new version.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use uuid::Uuid;
use xero_sync_domain::error::{AwsError, Error};
use xero_sync_domain::model::GrantId;
use xero_sync_domain::tokens::TokenSet;
use xero_sync_domain::vault::TokenVault;

use crate::sdk_error;

#[derive(Clone, Debug)]
pub struct SecretsManagerVault {
    client: Client,
    prefix: String,
}

const NOT_FOUND: &str = "ResourceNotFoundException";
const EXISTS: &str = "ResourceExistsException";

fn secrets<E: ProvideErrorMetadata>(
    operation: &'static str,
) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> AwsError {
    move |e| sdk_error("SecretsManager", operation, &e)
}

impl SecretsManagerVault {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into() }
    }

    pub fn secret_name(&self, grant: &GrantId) -> String {
        format!("{}{}", self.prefix, grant)
    }

    /// The same token set always gets the same version id, so a retried write after a timeout
    /// does not add a version.
    fn version_id(tokens: &TokenSet) -> String {
        let seed =
            format!("{}|{}|{}", tokens.grant_id, tokens.refresh_token.secret(), tokens.obtained_at.timestamp_micros());
        Uuid::new_v5(&Uuid::NAMESPACE_OID, seed.as_bytes()).to_string()
    }
}

#[async_trait]
impl TokenVault for SecretsManagerVault {
    async fn load(&self, grant: &GrantId) -> Result<Option<TokenSet>, Error> {
        let result = self.client.get_secret_value().secret_id(self.secret_name(grant)).send().await;
        let out = match result.map_err(secrets("GetSecretValue")) {
            Ok(out) => out,
            Err(e) if e.code_is(NOT_FOUND) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let raw =
            out.secret_string.ok_or(Error::Corrupt { what: "token set", reason: "secret has no string".into() })?;
        // serde_json's messages can quote the input ("invalid type: string \"...\""), and this
        // input holds tokens: only the kind of error and its position are kept.
        serde_json::from_str(&raw).map(Some).map_err(|e| Error::Corrupt {
            what: "token set",
            reason: format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()),
        })
    }

    async fn store(&self, tokens: &TokenSet) -> Result<(), Error> {
        let name = self.secret_name(&tokens.grant_id);
        let body =
            serde_json::to_string(tokens).map_err(|e| Error::Corrupt { what: "token set", reason: e.to_string() })?;
        let version = Self::version_id(tokens);
        // Put first: after the first refresh the secret exists, so this is one call.
        let put = |c: &Client| {
            c.put_secret_value().secret_id(&name).secret_string(&body).client_request_token(&version).send()
        };
        match put(&self.client).await.map_err(secrets("PutSecretValue")) {
            Ok(_) => return Ok(()),
            Err(e) if e.code_is(NOT_FOUND) => {}
            Err(e) => return Err(e.into()),
        }
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description("Xero OAuth token set for one grant (xero-sync)")
            .secret_string(&body)
            .client_request_token(&version)
            .send()
            .await
            .map_err(secrets("CreateSecret"));
        match created {
            Ok(_) => Ok(()),
            // Another writer created it between our two calls.
            Err(e) if e.code_is(EXISTS) => {
                put(&self.client).await.map(|_| ()).map_err(|e| secrets("PutSecretValue")(e).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn replace(&self, tokens: &TokenSet) -> Result<bool, Error> {
        let body =
            serde_json::to_string(tokens).map_err(|e| Error::Corrupt { what: "token set", reason: e.to_string() })?;
        let result = self
            .client
            .put_secret_value()
            .secret_id(self.secret_name(&tokens.grant_id))
            .secret_string(&body)
            .client_request_token(Self::version_id(tokens))
            .send()
            .await;
        match result.map_err(secrets("PutSecretValue")) {
            Ok(_) => Ok(true),
            Err(e) if e.code_is(NOT_FOUND) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, grant: &GrantId) -> Result<(), Error> {
        let result = self
            .client
            .delete_secret()
            .secret_id(self.secret_name(grant))
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result.map_err(secrets("DeleteSecret")) {
            Ok(_) => Ok(()),
            Err(e) if e.code_is(NOT_FOUND) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
