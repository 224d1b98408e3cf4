//! Logging for the functions: Lambda's level and format variables as the runtime reads them
//! (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`; `AWS_LAMBDA_LOG_FORMAT=JSON`), with one difference.
//! The AWS SDK and the HTTP stack print request and response bodies at debug and trace:
//! DynamoDB items with customers' email addresses, OAuth states. They stay at info whatever
//! level is asked for, unless a directive names one of them explicitly.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

const WIRE_CRATES: &[&str] =
    &["aws_smithy", "aws_sdk", "aws_config", "aws_runtime", "hyper", "h2", "reqwest", "rustls"];

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
