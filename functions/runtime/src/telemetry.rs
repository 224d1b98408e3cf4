//! Logging for the functions: Lambda's level and format variables as the runtime reads them
//! (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`; `AWS_LAMBDA_LOG_FORMAT=JSON`), with one difference.
//! The AWS SDK and the HTTP stack print request and response bodies at debug and trace:
//! DynamoDB items with customers' email addresses, OAuth states; the Lambda runtime prints every
//! raw event it receives at trace (webhook bodies, queue messages). They stay at info whatever
//! level is asked for, unless a directive names one of them explicitly.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

const WIRE_CRATES: &[&str] = &[
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "aws_runtime",
    "hyper",
    "h2",
    "reqwest",
    "rustls",
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    "oauth2",
];

/// The filter for `level` (plus any `RUST_LOG` directives), with the wire-level crates capped.
pub fn filter(level: &str) -> EnvFilter {
    let level = LevelFilter::from_str(level).unwrap_or(LevelFilter::INFO);
    let mut filter = EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    for krate in WIRE_CRATES {
        filter = filter.add_directive(format!("{krate}=info").parse().expect("a fixed directive parses"));
    }
    filter
}

/// Installs the subscriber once per process, at start-up.
pub fn init() {
    let level =
        std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "INFO".into());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_env_filter(filter(&level));
    if json { builder.json().init() } else { builder.init() }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn at_trace_the_runtimes_raw_event_and_the_sdks_bodies_stay_out_of_the_logs() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(super::filter("trace"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime 1.x logs for every invocation, under its own module's target.
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "{\"email\":\"jane@example.com\"}", "raw JSON event received from Lambda");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", body = "jane@example.com", "response");
            tracing::trace!(target: "xero_sync_domain::store", "our own trace line");
        });
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("our own trace line"), "{logs}");
        assert!(!logs.contains("jane@example.com"), "{logs}");
    }
}
