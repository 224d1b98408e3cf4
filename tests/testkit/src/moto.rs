//! A moto server on a port the OS picks, ended with the process that started it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
const STARTUP: Duration = Duration::from_secs(60);

pub struct Moto {
    child: Child,
    /// moto runs under a small shell that kills it when this pipe closes, which also happens
    /// when the test process dies without running destructors.
    stdin: Option<ChildStdin>,
    endpoint: String,
}

impl Moto {
    /// Starts moto_server (`$MOTO_SERVER`, else `moto_server` on PATH) on 127.0.0.1, port 0,
    /// and returns once it has said which port it listens on.
    pub fn start() -> anyhow::Result<Self> {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$MOTO_BIN" -H 127.0.0.1 -p 0 & moto=$!; read _ignored; kill "$moto"; wait "$moto""#)
            .env("MOTO_BIN", &bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {bin} (install it with: pip install 'moto[server]')"))?;
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Werkzeug announces the bound address on stderr, then logs every request there; the
        // pipe must keep draining or moto blocks once it fills.
        std::thread::spawn(move || {
            let log_path = std::env::temp_dir().join(format!("xero-sync-moto-{}.log", std::process::id()));
            let mut log = std::fs::File::create(log_path).ok();
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
                if let Some(log) = log.as_mut() {
                    let _ = writeln!(log, "{line}");
                }
            }
        });
        let deadline = Instant::now() + STARTUP;
        let port = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(port) => break port,
                Err(_) if Instant::now() > deadline => bail!("{bin} did not start within {STARTUP:?}"),
                Err(_) => {
                    if let Some(status) = child.try_wait()? {
                        bail!("{bin} exited at start-up ({status}); is moto[server] installed?");
                    }
                }
            }
        };
        Ok(Self { child, stdin, endpoint: format!("http://127.0.0.1:{port}") })
    }

    /// One server for the whole test binary; each test provisions its own uniquely named stack.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(|| Moto::start().expect("moto server starts"))
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What the functions get from `AWS_ENDPOINT_URL`, `AWS_REGION` and fake credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// The variables a function process needs to reach this server through the SDK's
    /// standard configuration chain.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
