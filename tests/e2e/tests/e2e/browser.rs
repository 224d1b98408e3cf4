//! A person connecting in a real browser: headless Chromium (Debian's package) clicks through
//! the emulator's consent page, and the functions run behind a local API Gateway stand-in.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use xero_emulator::demo;
use xero_sync_domain::model::ConnectionStatus;
use xero_sync_testkit::LocalApi;

use crate::helpers::*;

/// chromedriver on a port it picks, ended with the test.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> Self {
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mut child =
            Command::new(&bin).arg("--port=0").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap_or_else(
                |e| panic!("{bin} does not start ({e}); install Debian's chromium-driver (./dev tools does)"),
            );
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line = lines.next().expect("chromedriver says where it listens").unwrap();
            if let Some(port) = line.split("started successfully on port ").nth(1) {
                break port.trim_end_matches('.').trim().to_owned();
            }
        };
        // Keep draining so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_by_clicking_through_xeros_consent_page_in_chromium() {
    let mut api = LocalApi::bind().await.unwrap();
    let base = api.base_url();
    let w = Arc::new(
        World::with(Options { redirect_uri: Some(format!("{base}/oauth/callback")), ..Options::default() }).await,
    );
    w.emu.set_auto_approve(false, None);
    let world = w.clone();
    api.serve(Arc::new(move |request| {
        let world = world.clone();
        Box::pin(async move {
            if request.uri().path().starts_with("/oauth/") {
                oauth_callback::handle(&world.callback, request).await
            } else {
                connect::handle(&world.connect, request).await
            }
        })
    }));

    let _ = rustls::crypto::ring::default_provider().install_default();
    let driver = ChromeDriver::start();
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
        }
    });
    let browser = ClientBuilder::rustls()
        .unwrap()
        .capabilities(capabilities.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .expect("chromium starts under chromedriver");

    // No return_to: the flow ends on our own page.
    let link = w.link("acct-browser", None, Some("browser-owner@example.com"), w.now().timestamp() + 600);
    browser.goto(&format!("{base}{link}")).await.unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("button.approve"))
        .await
        .expect("Xero's consent page");
    let consent = browser.source().await.unwrap();
    assert!(
        consent.contains("Demo Company (NZ)") && consent.contains("Demo Company (AU)"),
        "the user's organisations are offered"
    );
    for checkbox in browser.find_all(Locator::Css("input[name=tenant]")).await.unwrap() {
        let is_nz = checkbox.attr("value").await.unwrap().as_deref() == Some(&demo::NZ_TENANT_ID.to_string());
        if checkbox.is_selected().await.unwrap() != is_nz {
            checkbox.click().await.unwrap();
        }
    }
    browser.find(Locator::Css("button.approve")).await.unwrap().click().await.unwrap();

    // The consent page has a heading too: wait for the browser to be back at our callback
    // before reading one, or the old page's heading may be found just as it goes away.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !browser.current_url().await.unwrap().path().ends_with("/oauth/callback") {
        assert!(std::time::Instant::now() < deadline, "the browser never came back to the callback");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let heading = browser.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Connected to Xero");
    let page = browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Demo Company (NZ)"), "{page}");
    browser.close().await.unwrap();

    let connections = w.connections("acct-browser").await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].status, ConnectionStatus::Connected);
    assert_eq!(connections[0].tenant_id.0, demo::NZ_TENANT_ID);
}
