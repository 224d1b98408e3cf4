//! The AWS side of xero-sync's ports: DynamoDB (the store), Secrets Manager (the token vault),
//! SES (account emails), EventBridge (platform events), SQS (our queues) and S3 (uploaded files). Each adapter turns the SDK's errors
//! into the domain's [`AwsError`], saying whether a retry may help.

pub mod eventbridge;
pub mod s3;
pub mod secrets;
pub mod ses;
pub mod sqs;
pub mod store;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use xero_sync_domain::error::AwsError;

pub use eventbridge::EventBridgePublisher;
pub use s3::Uploads;
pub use secrets::SecretsManagerVault;
pub use ses::SesNotifier;
pub use sqs::Queue;
pub use store::DynamoStore;

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
    "ServiceUnavailable",
];

/// A failed SDK call as the domain sees it: service, operation, the service's code and
/// message, and whether it is worth retrying.
pub fn sdk_error<E>(service: &'static str, operation: &'static str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata,
{
    let (code, message, retryable) = match err {
        SdkError::ServiceError(service_err) => {
            let e = service_err.err();
            let code = e.code().map(str::to_owned);
            // A 5xx is the service's own trouble, whatever its code (or none).
            let retryable = code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c))
                || service_err.raw().status().is_server_error();
            (code, e.message().map(str::to_owned), retryable)
        }
        // Timeouts, connection failures and unparseable responses may succeed next time;
        // a request we could not even build will not.
        SdkError::TimeoutError(_) => (Some("Timeout".into()), None, true),
        SdkError::DispatchFailure(_) => (Some("DispatchFailure".into()), None, true),
        SdkError::ResponseError(_) => (Some("ResponseError".into()), None, true),
        SdkError::ConstructionFailure(_) => (Some("ConstructionFailure".into()), None, false),
        _ => (None, None, true),
    };
    AwsError { service, operation, code, message, retryable }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;
    use xero_sync_domain::settings::TaxMapping;

    #[test]
    fn stored_decimals_keep_their_digits_in_dynamodb_items() {
        let m: TaxMapping = serde_json::from_str(
            r#"{"platform_tax_rate_id":"t","rate":12.345,"components":[0.1,12.245],"xero_tax_type":"X"}"#,
        )
        .unwrap();
        let stored = serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(&m).unwrap();
        let back = serde_dynamo::from_item::<_, TaxMapping>(stored).unwrap();
        assert_eq!(back, m);
        assert_eq!((back.rate.to_string(), back.components[0].to_string()), ("12.345".into(), "0.1".into()));
    }

    #[test]
    fn stored_decimals_come_back_from_string_attributes() {
        let value = serde_json::json!({"platform_tax_rate_id": "t", "rate": "15.000", "components": ["0.1"], "xero_tax_type": "X"});
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&value).unwrap();
        let back: TaxMapping = serde_dynamo::from_item(item).unwrap();
        assert_eq!((back.rate.to_string(), back.components[0].to_string()), ("15.000".into(), "0.1".into()));
    }
}
