//! Headless Chromium for the browser tests, and what they check each page with.
//!
//! [`Browser::start`] runs Debian's chromedriver (`$CHROMEDRIVER`, else `chromedriver` on PATH)
//! on a port it picks and opens a headless Chromium session (`$CHROMIUM`, else
//! `/usr/bin/chromium`); both end when the [`Browser`] is dropped, even when the test panics.
//! A `Browser` is a [`fantoccini::Client`] (it derefs to one), with:
//! - [`Browser::check_state`]: a screenshot of the page, then axe-core on it (no serious or
//!   critical violation), for each state of a page a test walks through;
//! - [`Browser::screenshot`]: `<target>/test-output/<test>/<nn>-<state>.png`, the whole page;
//! - [`axe`] and [`assert_accessible`]: axe-core (`$AXE_CORE_JS`, which `./dev tools` installs
//!   and `./dev test` sets) injected through WebDriver, which no page's CSP stops;
//! - [`Browser::wait_for`], [`Browser::wait_for_path`] and [`Browser::click_and_wait_for_page`]:
//!   an element, the browser being at a path, the page a click leads to, within [`WAIT`], polled
//!   rather than slept for.

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a page, an element or a navigation may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The flags Debian's Chromium needs to run headless as root in a container, and a window
/// large enough for a settings page.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,800",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
];

/// chromedriver on a port it picks, in a process group of its own with the Chromium it starts,
/// so that dropping it ends both.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> Self {
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mut child = Command::new(&bin)
            .arg("--port=0")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{bin} does not start ({e}); install Debian's chromium-driver (./dev tools does)")
            });
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
        // The whole group: chromedriver and every Chromium process it started. The session is
        // not closed first (a drop cannot wait), so Chromium would otherwise outlive the test.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session for one test, and where that test's screenshots go.
pub struct Browser {
    client: Client,
    // Dropped after the client, ending chromedriver and Chromium.
    _driver: ChromeDriver,
    output: PathBuf,
    shots: AtomicUsize,
}

impl Deref for Browser {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Browser {
    /// Starts chromedriver and Chromium for the test named `test` (its function's name is a
    /// good choice: it names the test's output directory, emptied now).
    pub async fn start(test: &str) -> Browser {
        // Both ring (reqwest) and aws-lc (the AWS SDK) are in the graph: the client is told which.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let output = test_output_dir(test);
        let driver = ChromeDriver::start();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": CHROMIUM_ARGS,
            }
        });
        let client = ClientBuilder::rustls()
            .expect("rustls roots")
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&driver.url)
            .await
            .expect("chromium starts under chromedriver");
        Browser { client, _driver: driver, output, shots: AtomicUsize::new(0) }
    }

    /// Ends the session, then chromedriver and Chromium.
    pub async fn close(self) {
        let Browser { client, _driver, .. } = self;
        let _ = client.close().await;
    }

    /// The test's output directory: `<target>/test-output/<test>/`.
    pub fn output_dir(&self) -> &Path {
        &self.output
    }

    /// One state of a page: its screenshot, then axe-core on it, failing on any serious or
    /// critical violation (the screenshot is saved either way). Returns the screenshot's path.
    pub async fn check_state(&self, state: &str) -> PathBuf {
        let shot = self.screenshot(state).await;
        self.assert_accessible(state).await;
        shot
    }

    /// Saves the whole page as `<target>/test-output/<test>/<nn>-<state>.png`, `nn` counting
    /// this test's screenshots from 01, and returns that path.
    pub async fn screenshot(&self, state: &str) -> PathBuf {
        let n = self.shots.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self.output.join(format!("{n:02}-{}.png", file_name(state)));
        let png = full_page_png(&self.client).await;
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{} cannot be written: {e}", path.display()));
        path
    }

    /// axe-core's violations on the page as it is now; see [`axe`].
    pub async fn axe(&self, context: &str) -> Vec<Violation> {
        axe(&self.client, context).await
    }

    /// Fails listing every serious or critical violation axe-core finds; see [`assert_accessible`].
    pub async fn assert_accessible(&self, state: &str) {
        assert_accessible(&self.client, state).await
    }

    /// The first element `locator` finds within [`WAIT`].
    pub async fn wait_for(&self, locator: Locator<'_>) -> Element {
        let what = format!("{locator:?}");
        match self.client.wait().at_most(WAIT).every(Duration::from_millis(50)).for_element(locator).await {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                panic!("no {what} within {WAIT:?} at {url}: {e}")
            }
        }
    }

    /// Waits until the browser's URL path ends with `path` (a whole segment or more, such as
    /// `/oauth/callback`), so that what is read next comes from the page navigated to and not
    /// from the one it is leaving. Returns the URL.
    pub async fn wait_for_path(&self, path: &str) -> url::Url {
        self.wait_for_url(&format!("a URL whose path ends with {path}"), |url| url.path().ends_with(path)).await
    }

    /// Clicks `element` (a submit button, a link) and waits until the page it leads to has
    /// loaded, even when that page has the same URL (a form posted back to its page, then
    /// redirected to it): the old document is marked first, and the wait is for a loaded one
    /// without the mark. Returns the new page's URL.
    pub async fn click_and_wait_for_page(&self, element: Element) -> url::Url {
        self.client.execute("window.__xeroSyncLeaving = true;", vec![]).await.expect("the page is marked");
        element.click().await.expect("the click");
        let deadline = Instant::now() + WAIT;
        loop {
            // While the browser is between documents the script may fail: that is waited out too.
            let state = self
                .client
                .execute("return window.__xeroSyncLeaving === true ? 'leaving' : document.readyState;", vec![])
                .await;
            if matches!(&state, Ok(Value::String(s)) if s == "complete") {
                return self.client.current_url().await.expect("the browser's URL");
            }
            let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            assert!(Instant::now() < deadline, "no new page loaded within {WAIT:?} of the click: at {url} ({state:?})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the browser's URL satisfies `done` (`what` says what for the failure).
    pub async fn wait_for_url(&self, what: &str, done: impl Fn(&url::Url) -> bool) -> url::Url {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.client.current_url().await.expect("the browser's URL");
            if done(&url) {
                return url;
            }
            assert!(Instant::now() < deadline, "no {what} within {WAIT:?}: still at {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One rule axe-core found broken, with the elements that break it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule, such as `image-alt` or `label`.
    pub id: String,
    /// `minor`, `moderate`, `serious` or `critical`.
    pub impact: String,
    pub help: String,
    pub help_url: String,
    pub nodes: Vec<ViolationNode>,
}

#[derive(Debug, Clone)]
pub struct ViolationNode {
    /// The element's CSS selector (frames and shadow roots joined by ` >> `).
    pub target: String,
    pub html: String,
    /// What is wrong with this element and how to fix it.
    pub failure_summary: String,
}

impl Violation {
    /// What the pages must never have: `serious` or `critical`.
    pub fn is_serious(&self) -> bool {
        matches!(self.impact.as_str(), "serious" | "critical")
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "[{}] {}: {} ({})", self.impact, self.id, self.help, self.help_url)?;
        for node in &self.nodes {
            writeln!(f, "    {}  {}", node.target, node.html)?;
            for line in node.failure_summary.lines() {
                writeln!(f, "      {line}")?;
            }
        }
        Ok(())
    }
}

/// axe-core's source, read once from `$AXE_CORE_JS`.
fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
            panic!(
                "AXE_CORE_JS is not set: it names axe-core's axe.min.js, which `./dev tools` installs; \
                 run the tests with `./dev test`, or `eval \"$(./dev env)\"` before cargo test"
            )
        });
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "AXE_CORE_JS={path} cannot be read ({e}); `./dev tools` installs axe-core and `./dev env` says where"
            )
        })
    })
}

/// Runs axe-core on the page the browser is showing and returns its violations, of any impact.
/// axe-core goes in through WebDriver's execute (once per page), which the page's CSP does not
/// govern, and runs through execute-async. `context` names the page in failure messages.
pub async fn axe(client: &Client, context: &str) -> Vec<Violation> {
    let loaded = client.execute("return typeof window.axe === 'object';", vec![]).await;
    if loaded.ok().and_then(|v| v.as_bool()) != Some(true) {
        client
            .execute(axe_source(), vec![])
            .await
            .unwrap_or_else(|e| panic!("axe-core could not be injected into {context}: {e}"));
    }
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { resultTypes: ['violations'] }).then(
            (results) => done({ violations: results.violations.map((v) => ({
                id: v.id, impact: v.impact || 'unknown', help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map((n) => ({
                    target: n.target.map((t) => Array.isArray(t) ? t.join(' >> ') : String(t)).join(' >> '),
                    html: n.html, failureSummary: n.failureSummary || '',
                })),
            })) }),
            (error) => done({ error: String(error && error.stack || error) }),
        );
    "#;
    let result =
        client.execute_async(script, vec![]).await.unwrap_or_else(|e| panic!("axe-core did not run on {context}: {e}"));
    if let Some(error) = result.get("error") {
        panic!("axe-core failed on {context}: {}", error.as_str().unwrap_or_default());
    }
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    result["violations"]
        .as_array()
        .unwrap_or_else(|| panic!("axe-core's answer on {context} has no violations list: {result}"))
        .iter()
        .map(|v| Violation {
            id: text(v, "id"),
            impact: text(v, "impact"),
            help: text(v, "help"),
            help_url: text(v, "helpUrl"),
            nodes: v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| ViolationNode {
                    target: text(n, "target"),
                    html: text(n, "html"),
                    failure_summary: text(n, "failureSummary"),
                })
                .collect(),
        })
        .collect()
}

/// Runs [`axe`] and fails listing every serious or critical violation, with its elements.
/// Lesser ones are printed (`--nocapture` shows them) but do not fail the test.
pub async fn assert_accessible(client: &Client, state: &str) {
    let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
    let violations = axe(client, state).await;
    let (serious, lesser): (Vec<_>, Vec<_>) = violations.into_iter().partition(Violation::is_serious);
    for v in &lesser {
        eprint!("axe-core on {state} ({url}), not failing the test: {v}");
    }
    assert!(
        serious.is_empty(),
        "axe-core finds {} serious or critical violation(s) on {state} ({url}):\n{}",
        serious.len(),
        serious.iter().map(ToString::to_string).collect::<String>()
    );
}

/// A PNG of the whole page: the window is made as tall as the page for the shot, then put back.
async fn full_page_png(client: &Client) -> Vec<u8> {
    let sizes = client
        .execute(
            "const d = document.documentElement; \
             return [Math.max(d.scrollHeight, document.body ? document.body.scrollHeight : 0), \
                     window.innerHeight, window.outerWidth, window.outerHeight];",
            vec![],
        )
        .await
        .ok()
        .and_then(|v| serde_json::from_value::<[f64; 4]>(v).ok());
    let Some([page, inner, width, outer]) = sizes else {
        return client.screenshot().await.expect("a screenshot");
    };
    if page <= inner {
        return client.screenshot().await.expect("a screenshot");
    }
    let tall = (outer - inner + page).min(10_000.0);
    client.set_window_size(width as u32, tall as u32).await.expect("the window resized for a screenshot");
    let png = client.screenshot().await;
    let _ = client.set_window_size(width as u32, outer as u32).await;
    png.expect("a screenshot")
}

/// A state's or a test's name as a file name: lower case, words joined by `-` (`_` is kept).
fn file_name(state: &str) -> String {
    let mut name = String::new();
    for c in state.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') && !name.is_empty() {
            name.push('-');
        }
    }
    name.trim_end_matches('-').to_owned()
}

/// `<target>/test-output/<test>/`, emptied: the target directory is `$CARGO_TARGET_DIR` when set,
/// else the one holding this test binary (cargo marks it with `CACHEDIR.TAG`).
fn test_output_dir(test: &str) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()).map(Path::to_path_buf))
            .unwrap_or_else(|| workspace.join("target")),
    };
    let dir = target.join("test-output").join(file_name(test));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{} cannot be made: {e}", dir.display()));
    dir
}

/// The CSP the hosted pages are served with, at its strictest: no inline script, nothing from
/// elsewhere, no styles or images even.
const STRICT_CSP: &str = "default-src 'none'; script-src 'self'";

/// The harness's own pages: one with an image without alt text and an input without a label
/// (both critical for axe-core) and an inline script the CSP must stop, and a long clean one.
fn harness_page(path: &str) -> lambda_http::Response<lambda_http::Body> {
    let (content_type, body) = match path {
        "/broken" => (
            "text/html; charset=utf-8",
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Broken</title>\
             <script src=\"/app.js\"></script></head><body><main><h1>Broken</h1>\
             <script>document.documentElement.dataset.inline = 'ran';</script>\
             <img src=\"/logo.png\" id=\"logo\"><form><input type=\"text\" name=\"q\" id=\"q\"></form></main>\
             </body></html>"
                .to_owned(),
        ),
        "/clean" => (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Clean</title></head><body>\
                 <main><h1>Clean</h1><img src=\"/logo.png\" alt=\"The platform's logo\"><form>\
                 <label for=\"q\">Search</label><input type=\"text\" name=\"q\" id=\"q\"></form>{}</main></body></html>",
                (1..=80).map(|i| format!("<p>Line {i} of a page longer than the window.</p>")).collect::<String>()
            ),
        ),
        "/app.js" => ("text/javascript", "document.documentElement.dataset.self = 'ran';".to_owned()),
        _ => ("text/plain", "not found".to_owned()),
    };
    lambda_http::Response::builder()
        .status(if content_type == "text/plain" { 404 } else { 200 })
        .header("content-type", content_type)
        .header("content-security-policy", STRICT_CSP)
        .body(lambda_http::Body::Text(body))
        .unwrap()
}

/// A PNG's width and height, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_injected_through_webdriver_runs_under_a_strict_csp_and_flags_an_unlabelled_input_but_not_a_clean_page() {
    use futures::FutureExt;

    let mut api = xero_sync_testkit::LocalApi::bind().await.unwrap();
    let base = api.base_url();
    api.serve(std::sync::Arc::new(|request| {
        let path = request.uri().path().to_owned();
        Box::pin(async move { harness_page(&path) })
    }));
    let browser = Browser::start(
        "axe_injected_through_webdriver_runs_under_a_strict_csp_and_flags_an_unlabelled_input_but_not_a_clean_page",
    )
    .await;

    browser.goto(&format!("{base}/broken")).await.unwrap();
    browser.wait_for(Locator::Css("h1")).await;
    // The CSP is in force: the page's own script ran, its inline one did not.
    let ran = browser
        .execute("return [document.documentElement.dataset.self, document.documentElement.dataset.inline];", vec![])
        .await
        .unwrap();
    assert_eq!(ran, json!(["ran", null]), "script-src 'self' lets /app.js run and stops the inline script");

    let violations = browser.axe("the broken page").await;
    let serious: Vec<_> = violations.iter().filter(|v| v.is_serious()).collect();
    let rule =
        |id: &str| serious.iter().find(|v| v.id == id).unwrap_or_else(|| panic!("no serious {id} in {violations:#?}"));
    assert_eq!(rule("image-alt").impact, "critical");
    assert_eq!(rule("image-alt").nodes[0].target, "#logo");
    assert_eq!(rule("label").impact, "critical");
    assert_eq!(rule("label").nodes[0].target, "#q");
    assert!(!rule("label").nodes[0].failure_summary.is_empty());

    // The screenshot is saved before axe-core's verdict, which lists each violation's elements.
    let failed = std::panic::AssertUnwindSafe(browser.check_state("Broken page")).catch_unwind().await;
    let shot = browser.output_dir().join("01-broken-page.png");
    assert!(shot.is_file(), "{} is saved", shot.display());
    let message = match failed {
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
        Ok(_) => panic!("assert_accessible passes a page with an image without alt text"),
    };
    for expected in ["on Broken page", "image-alt", "#logo", "label", "#q"] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }

    browser.goto(&format!("{base}/clean")).await.unwrap();
    browser.wait_for_path("/clean").await;
    let shot = browser.check_state("Clean page").await;
    assert!(shot.ends_with("02-clean-page.png"), "{}", shot.display());
    let (width, height) = png_size(&std::fs::read(&shot).unwrap());
    assert_eq!(width, 1280);
    assert!(height > 1500, "the whole page, not only the window: {height}px tall");
    assert!(browser.axe("the clean page").await.iter().all(|v| !v.is_serious()));
    browser.close().await;
}
