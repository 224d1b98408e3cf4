//! Account emails through SES v2.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use xero_sync_domain::error::Error;
use xero_sync_domain::notify::{Email, Notifier};

use crate::sdk_error;

#[derive(Clone, Debug)]
pub struct SesNotifier {
    client: Client,
    from: String,
    reply_to: Option<String>,
}

impl SesNotifier {
    pub fn new(client: Client, from: impl Into<String>, reply_to: Option<String>) -> Self {
        Self { client, from: from.into(), reply_to }
    }
}

fn content(data: &str) -> Result<Content, Error> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| Error::Corrupt { what: "email", reason: e.to_string() })
}

#[async_trait]
impl Notifier for SesNotifier {
    async fn send(&self, email: &Email) -> Result<(), Error> {
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(Body::builder().text(content(&email.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .set_reply_to_addresses(self.reply_to.clone().map(|r| vec![r]))
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            // SES quotes refused addresses in its messages; keep only the code.
            .map_err(|e| {
                let e = sdk_error("SESv2", "SendEmail", &e).without_message();
                match e.code.as_deref() {
                    Some(code) if REFUSED_FOR_GOOD.contains(&code) => Error::EmailRefused { code: code.to_owned() },
                    _ => Error::Aws(e),
                }
            })?;
        Ok(())
    }
}

/// SES's answers that sending again cannot change: the message or address is refused (in the
/// sandbox, an unverified recipient too), the sender is not verified, or sending is stopped
/// for the account. Throttling and SES's own trouble are worth a retry and are not here.
const REFUSED_FOR_GOOD: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
];
