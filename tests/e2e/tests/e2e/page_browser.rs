//! Issue 20, the hosted integration page in headless Chromium: a bookkeeper opens it from the
//! platform, chooses the settings, reads the sync log, retries a failure, disconnects and
//! reconnects. axe-core checks every state of the page; each state's screenshot is kept under
//! the test's output.

use std::sync::Arc;

use fantoccini::Locator;
use xero_emulator::demo;
use xero_sync_domain::model::ConnectionStatus;
use xero_sync_domain::settings::NewInvoiceStatus;
use xero_sync_testkit::LocalApi;

use crate::chromium::Browser;
use crate::helpers::*;
use crate::page_api::session_url;

/// The page, the connect link and the OAuth callback on a local port, as the template routes
/// them, for a connected account without settings. `localhost`, not 127.0.0.1: Chromium keeps
/// Secure cookies on plain http only for localhost.
async fn page_served(account: &str) -> (LocalApi, Arc<World>, String) {
    page_served_with(account, Options::default()).await
}

async fn page_served_with(account: &str, options: Options) -> (LocalApi, Arc<World>, String) {
    let mut api = LocalApi::bind().await.unwrap();
    let base = api.base_url().replace("127.0.0.1", "localhost");
    let w = Arc::new(World::with(Options { redirect_uri: Some(format!("{base}/oauth/callback")), ..options }).await);
    w.connect_account(account).await;
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    let world = w.clone();
    api.serve(Arc::new(move |request| {
        let world = world.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            if path == "/integration" || path.starts_with("/integration/") || path.ends_with("/integration-sessions") {
                integration_page::handle(&world.page, request).await
            } else if path.starts_with("/oauth/") {
                oauth_callback::handle(&world.callback, request).await
            } else {
                connect::handle(&world.connect, request).await
            }
        })
    }));
    (api, w, base)
}

/// Opens a new session's URL in the browser and waits for the page.
async fn open_page(browser: &Browser, w: &World, base: &str, account: &str) {
    browser.goto(&format!("{base}{}", session_url(w, account).await)).await.unwrap();
    browser.wait_for_path("/integration").await;
    browser.wait_for(Locator::Css("h1")).await;
}

async fn text_of(browser: &Browser, css: &str) -> String {
    browser.wait_for(Locator::Css(css)).await.text().await.unwrap()
}

async fn choose(browser: &Browser, name: &str, value: &str) {
    let select = browser.find(Locator::Css(&format!("select[name='{name}']"))).await.unwrap();
    select.select_by_value(value).await.unwrap_or_else(|e| panic!("{name} offers {value}: {e}"));
}

async fn save(browser: &Browser) -> url::Url {
    let button = browser.find(Locator::Css("form.settings button[type=submit]")).await.unwrap();
    browser.click_and_wait_for_page(button).await
}

/// The values a select offers, the empty "none chosen" left out.
async fn offered(browser: &Browser, name: &str) -> Vec<String> {
    let options = browser.find_all(Locator::Css(&format!("select[name='{name}'] option"))).await.unwrap();
    let mut values = Vec::new();
    for o in options {
        let value = o.attr("value").await.unwrap().unwrap_or_default();
        if !value.is_empty() {
            values.push(value);
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bookkeeper_chooses_the_settings_on_the_page_and_the_next_invoice_uses_them() {
    let account = "acct-page-settings";
    let (_api, w, base) = page_served(account).await;
    let browser = Browser::start("a_bookkeeper_chooses_the_settings_on_the_page_and_the_next_invoice_uses_them").await;
    open_page(&browser, &w, &base, account).await;
    assert_eq!(text_of(&browser, "h2").await, "Demo Company (NZ)");
    assert_eq!(text_of(&browser, ".badge").await, "Connected");
    assert!(text_of(&browser, "body").await.contains("Ana Bookkeeper"));
    browser.check_state("the status card").await;

    // Only Xero rates that match the platform's are offered for it.
    assert_eq!(offered(&browser, "tax:gst").await, ["OUTPUT2"], "15 % matches GST on Income only");
    assert!(!offered(&browser, "tax:zero").await.contains(&"OUTPUT2".to_owned()));
    choose(&browser, "default_sales_account_code", "200").await;
    choose(&browser, "tax:gst", "OUTPUT2").await;
    browser
        .find(Locator::Css("input[name=new_invoice_status][value=AUTHORISED]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let region = uuid::Uuid::new_v5(&demo::NZ_TENANT_ID, b"tracking:Region");
    choose(&browser, "tracking0_category", &region.to_string()).await;
    choose(&browser, "tracking0_attribute", "zone").await;
    let after = save(&browser).await;
    assert_eq!(after.path(), "/integration");
    assert_eq!(text_of(&browser, ".notice").await, "Settings saved.");

    // The category's options can now be mapped from the job attribute's values.
    let north = browser.find(Locator::Css("input[name='tracking0_option:North']")).await.unwrap();
    north.send_keys("N").await.unwrap();
    save(&browser).await;
    assert_eq!(text_of(&browser, ".notice").await, "Settings saved.");
    browser.check_state("settings saved").await;

    let saved = w.aws.store().get_settings(&key(account)).await.unwrap();
    assert_eq!(saved.version, 2);
    let s = &saved.settings;
    assert_eq!(
        (s.default_sales_account_code.as_deref(), s.new_invoice_status),
        (Some("200"), NewInvoiceStatus::Authorised)
    );
    assert_eq!(s.tax_mapping.len(), 1);
    assert_eq!(
        (s.tax_mapping[0].platform_tax_rate_id.as_str(), s.tax_mapping[0].xero_tax_type.as_str()),
        ("gst", "OUTPUT2")
    );
    assert_eq!(s.tracking_mapping[0].options.get("N").map(String::as_str), Some("North"));

    // The next invoice is pushed with them.
    deliver(&w, &event(account, "dlv-page-1", "inv-page-1", "INV-P1", new_customer("cust-p", "Kauri Builders"))).await;
    w.work_push_queue().await;
    let invoice = &in_xero(&w, "INV-P1")[0];
    assert_eq!(invoice["Status"], "AUTHORISED");
    assert_eq!(invoice["LineItems"][0]["TaxType"], "OUTPUT2");
    assert_eq!(invoice["LineItems"][0]["AccountCode"], "200");
    assert_eq!(invoice["LineItems"][0]["Tracking"][0]["Option"], "North");

    browser.refresh().await.unwrap();
    let log = text_of(&browser, "table").await;
    assert!(log.contains("INV-P1") && log.contains("Synced"), "{log}");
    browser.check_state("the sync log with a synced invoice").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tax_rate_that_does_not_match_is_shown_next_to_its_field_and_nothing_is_saved() {
    let account = "acct-page-mismatch";
    let (_api, w, base) = page_served(account).await;
    let browser =
        Browser::start("a_tax_rate_that_does_not_match_is_shown_next_to_its_field_and_nothing_is_saved").await;
    open_page(&browser, &w, &base, account).await;
    let before = w.aws.store().get_settings(&key(account)).await.unwrap();

    // The page never offers it; a form changed in the browser (or a rate changed in Xero since
    // the page was drawn) sends it anyway.
    browser
        .execute(
            "const s = document.querySelector(\"select[name='tax:gst']\"); const o = new Option('No GST', 'NONE'); \
             s.add(o); s.value = 'NONE';",
            vec![],
        )
        .await
        .unwrap();
    choose(&browser, "default_sales_account_code", "200").await;
    save(&browser).await;

    assert_eq!(text_of(&browser, ".notice").await, "Nothing was saved. Please correct the fields marked below.");
    let field = browser.find(Locator::Css("select[name='tax:gst']")).await.unwrap();
    assert_eq!(field.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    let described = field.attr("aria-describedby").await.unwrap().unwrap();
    let error = text_of(&browser, &format!("#{described}")).await;
    assert!(error.contains("does not match"), "{error}");
    browser.check_state("a tax rate refused next to its field").await;
    assert_eq!(w.aws.store().get_settings(&key(account)).await.unwrap(), before, "nothing saved");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_invoice_shows_xeros_words_and_once_the_settings_are_fixed_a_retry_syncs_it() {
    let account = "acct-page-retry";
    let (_api, w, base) = page_served(account).await;
    // A sales account chosen long ago and since deleted in Xero.
    let mut stale = settings(NewInvoiceStatus::Authorised);
    stale.default_sales_account_code = Some("999".into());
    w.aws.store().put_settings(&key(account), 0, &stale).await.unwrap();
    deliver(&w, &event(account, "dlv-page-r1", "inv-r1", "INV-R1", new_customer("cust-r", "Rata Plumbing"))).await;
    w.work_push_queue().await;
    assert!(in_xero(&w, "INV-R1").is_empty(), "Xero refused it");

    let browser =
        Browser::start("a_failed_invoice_shows_xeros_words_and_once_the_settings_are_fixed_a_retry_syncs_it").await;
    open_page(&browser, &w, &base, account).await;
    let failures = browser.find(Locator::LinkText("Failures only")).await.unwrap();
    browser.click_and_wait_for_page(failures).await;
    let log = text_of(&browser, "table").await;
    assert!(log.contains("INV-R1") && log.contains("Failed"), "{log}");
    assert!(log.contains("999"), "Xero's own words: {log}");
    assert!(log.contains("Choose a sales account"), "what to change: {log}");
    browser.check_state("a failed invoice in the log").await;
    // The account chosen long ago stays chosen, saying it is gone, rather than showing as none.
    let chosen = text_of(&browser, "select[name='default_sales_account_code'] option:checked").await;
    assert_eq!(chosen, "999 (not available in Xero)");

    choose(&browser, "default_sales_account_code", "200").await;
    save(&browser).await;
    assert_eq!(text_of(&browser, ".notice").await, "Settings saved.");
    let retry = browser.find(Locator::Css("form[action$='/invoices/inv-r1/retry'] button")).await.unwrap();
    browser.click_and_wait_for_page(retry).await;
    assert!(text_of(&browser, ".notice").await.starts_with("Sent again"));
    w.work_push_queue().await;

    browser.refresh().await.unwrap();
    let log = text_of(&browser, "table").await;
    assert!(log.contains("INV-R1") && log.contains("Synced"), "{log}");
    assert_eq!(in_xero(&w, "INV-R1").len(), 1, "in Xero once");
    assert_eq!(in_xero(&w, "INV-R1")[0]["LineItems"][0]["AccountCode"], "200");
    browser.check_state("the retried invoice synced").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_asks_first_and_the_page_reconnects_through_xero() {
    let account = "acct-page-disconnect";
    let (_api, w, base) = page_served(account).await;
    let browser = Browser::start("disconnecting_asks_first_and_the_page_reconnects_through_xero").await;
    open_page(&browser, &w, &base, account).await;

    // Test and Validate answer in the card.
    let test = browser.find(Locator::XPath("//button[normalize-space()='Test connection']")).await.unwrap();
    browser.click_and_wait_for_page(test).await;
    assert_eq!(
        text_of(&browser, "[role=status] .notice").await,
        "Xero answered: the connection works. Demo Company (NZ)"
    );
    browser.check_state("a test's answer").await;
    let validate = browser.find(Locator::XPath("//button[normalize-space()='Validate accounts']")).await.unwrap();
    browser.click_and_wait_for_page(validate).await;
    assert!(text_of(&browser, "[role=status] .notice").await.starts_with("Every account and tax rate"));
    browser.check_state("validated").await;

    let disconnect = browser.find(Locator::Css("a.disconnect")).await.unwrap();
    browser.click_and_wait_for_page(disconnect).await;
    assert_eq!(text_of(&browser, "h1").await, "Disconnect from Xero?");
    assert!(text_of(&browser, "body").await.contains("Nothing is deleted"));
    browser.check_state("the disconnect confirmation").await;
    assert_eq!(w.connections(account).await[0].status, ConnectionStatus::Connected, "not before it is confirmed");

    let confirm = browser.find(Locator::Css("button.danger")).await.unwrap();
    browser.click_and_wait_for_page(confirm).await;
    assert_eq!(text_of(&browser, ".badge").await, "Disconnected");
    assert_eq!(w.connections(account).await[0].status, ConnectionStatus::Disconnected);
    browser.check_state("disconnected").await;

    // Reconnect: through Xero's consent (the emulator approves at once) and back to the page.
    let reconnect = browser.find(Locator::Css("a.connect")).await.unwrap();
    assert_eq!(reconnect.text().await.unwrap().lines().next(), Some("Reconnect to Xero"));
    reconnect.click().await.unwrap();
    browser
        .wait_for_url("the page again, connected", |u| {
            u.path() == "/integration" && u.query() == Some("notice=connected")
        })
        .await;
    assert_eq!(text_of(&browser, ".notice").await, "Connected to Xero.");
    assert_eq!(text_of(&browser, ".badge").await, "Connected");
    assert_eq!(w.connections(account).await[0].status, ConnectionStatus::Connected);
    browser.check_state("reconnected").await;

    // A session URL used already: refused with a page that says what to do.
    let url = session_url(&w, account).await;
    browser.goto(&format!("{base}{url}")).await.unwrap();
    browser.wait_for(Locator::Css("h1")).await;
    browser.goto(&format!("{base}{url}")).await.unwrap();
    browser.wait_for_url("the used link", |u| u.query().is_some_and(|q| q.starts_with("session="))).await;
    assert_eq!(text_of(&browser, "h1").await, "This link has already been used");
    browser.check_state("a used link refused").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_refused_inside_a_frame_from_an_origin_not_allowed() {
    let account = "acct-page-framed";
    let (_api, w, base) = page_served(account).await;
    // Another site (another port is another origin) that embeds the page without being allowed.
    let mut elsewhere = LocalApi::bind().await.unwrap();
    let frame_src = format!("{base}{}", session_url(&w, account).await);
    embedding(&mut elsewhere, frame_src.clone());
    let browser = Browser::start("the_page_is_refused_inside_a_frame_from_an_origin_not_allowed").await;
    browser.goto(&elsewhere.base_url()).await.unwrap();
    assert_eq!(text_of(&browser, "h1").await, "The platform");
    browser.screenshot("framed by an origin not allowed").await;

    let frame = browser.wait_for(Locator::Css("iframe")).await;
    frame.enter_frame().await.unwrap();
    let inside = browser.find(Locator::Css("body")).await;
    let shown = match inside {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    assert!(
        !shown.contains("Xero integration") && !shown.contains("Demo Company"),
        "the page showed in the frame: {shown}"
    );
    browser.enter_parent_frame().await.unwrap();
    browser.close().await;
    // The frame's request reached the page, which answered; the browser refused to show it.
    let replay = integration_page::handle(
        &w.page,
        xero_sync_testkit::apigw::request("GET", &frame_src.replacen(&base, "", 1), &[], None),
    )
    .await;
    assert_eq!(replay.status(), 401, "the frame spent the URL: its answer was made, then refused by the browser");
}

/// A page of another site (another port is another origin) that embeds `src` in an iframe.
fn embedding(api: &mut LocalApi, src: String) {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><title>The platform</title></head><body><h1>The platform</h1>\
         <iframe title=\"Xero integration\" src=\"{src}\" width=\"1000\" height=\"700\"></iframe></body></html>"
    );
    api.serve(Arc::new(move |_request| {
        let html = html.clone();
        Box::pin(async move {
            lambda_http::Response::builder()
                .header("content-type", "text/html; charset=utf-8")
                .body(lambda_http::Body::Text(html))
                .unwrap()
        })
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_by_an_allowed_site_the_page_keeps_its_session_and_reconnects_through_a_popup() {
    let account = "acct-page-embedded";
    // The platform's site: 127.0.0.1, another site than the page's localhost, so the page's
    // cookie is a third-party (partitioned) one.
    let mut platform = LocalApi::bind().await.unwrap();
    let options = Options { page_frame_ancestors: Some(platform.base_url()), ..Options::default() };
    let (_api, w, base) = page_served_with(account, options).await;
    connect::disconnect_now(&w.connect, &key(account)).await.unwrap();
    embedding(&mut platform, format!("{base}{}", session_url(&w, account).await));

    let browser =
        Browser::start("embedded_by_an_allowed_site_the_page_keeps_its_session_and_reconnects_through_a_popup").await;
    browser.goto(&platform.base_url()).await.unwrap();
    let frame = browser.wait_for(Locator::Css("iframe")).await;
    frame.enter_frame().await.unwrap();
    // Opened in the frame: the session cookie was set there and the page shows in it.
    assert_eq!(text_of(&browser, ".badge").await, "Disconnected");
    browser.assert_accessible("the page in the platform's frame").await;
    browser.enter_parent_frame().await.unwrap();
    browser.screenshot("the page in the platform's frame").await;

    // Reconnect opens Xero in a popup (Xero's sign-in never loads in a frame).
    frame.enter_frame().await.unwrap();
    let page_window = browser.window().await.unwrap();
    browser.find(Locator::Css("a.connect")).await.unwrap().click().await.unwrap();
    let deadline = std::time::Instant::now() + crate::chromium::WAIT;
    while browser.windows().await.unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no popup opened");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The emulator approves at once; the popup ends on the page's own "connected" address,
    // tells the frame, and closes; the frame reloads.
    while browser.windows().await.unwrap().len() > 1 {
        assert!(std::time::Instant::now() < deadline, "the popup did not close");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    browser.switch_to_window(page_window).await.unwrap();
    let frame = browser.wait_for(Locator::Css("iframe")).await;
    frame.enter_frame().await.unwrap();
    let deadline = std::time::Instant::now() + crate::chromium::WAIT;
    loop {
        let badge = browser.find(Locator::Css(".badge")).await.ok();
        let text = match badge {
            Some(b) => b.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if text == "Connected" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the frame never showed the connection again: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    browser.assert_accessible("reconnected in the platform's frame").await;
    browser.enter_parent_frame().await.unwrap();
    browser.screenshot("reconnected in the platform's frame").await;
    browser.close().await;
    assert_eq!(w.connections(account).await[0].status, ConnectionStatus::Connected);
}
