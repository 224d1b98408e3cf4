use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::http;

/// Kills the child even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_starts_prints_its_urls_and_serves_the_demo_seed() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_xero-emulator"))
            .args(["--port", "0", "--seed", "demo", "--auto-approve"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the binary"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    // Read up to the last line the binary prints at start-up; it keeps running after that.
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = vec![];
        for line in BufReader::new(stdout).lines().map_while(Result::ok).take(50) {
            let last = line.starts_with("demo tenants:");
            lines.push(line);
            if last {
                break;
            }
        }
        lines
    })
    .await
    .expect("read output");
    let find = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no '{prefix}' in {lines:?}"))
            .to_string()
    };
    let base = find("base URL: ");
    assert_eq!(find("consent page: "), format!("{base}/identity/connect/authorize"));
    assert_eq!(find("demo client id: "), xero_emulator::demo::CLIENT_ID);
    assert_eq!(find("demo client secret: "), xero_emulator::demo::CLIENT_SECRET);
    let health: serde_json::Value =
        http().get(format!("{base}/_emulator/health")).send().await.expect("health").json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let info: serde_json::Value =
        http().get(format!("{base}/_emulator/info")).send().await.expect("info").json().await.expect("json");
    assert_eq!(info["tenants"].as_array().map(Vec::len), Some(2));
    let settings: serde_json::Value =
        http().get(format!("{base}/_emulator/settings")).send().await.expect("settings").json().await.expect("json");
    assert_eq!(settings["auto_approve"], true);
}
