//! A person connecting in a real browser: headless Chromium (Debian's package) clicks through
//! the emulator's consent page, and the functions run behind a local API Gateway stand-in.

use std::sync::Arc;

use fantoccini::Locator;
use xero_emulator::demo;
use xero_sync_domain::model::ConnectionStatus;
use xero_sync_testkit::LocalApi;

use crate::chromium::Browser;
use crate::helpers::*;

/// The connect link and the OAuth callback on a local port, for a world whose emulated Xero
/// waits for the person's consent. The API stops when the returned [`LocalApi`] is dropped.
async fn connect_flow_served() -> (LocalApi, Arc<World>, String) {
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
    (api, w, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_connects_by_clicking_through_xeros_consent_page_in_chromium() {
    let (_api, w, base) = connect_flow_served().await;
    let browser = Browser::start("a_person_connects_by_clicking_through_xeros_consent_page_in_chromium").await;

    // No return_to: the flow ends on our own page.
    let link = w.link("acct-browser", None, Some("browser-owner@example.com"), w.now().timestamp() + 600);
    browser.goto(&format!("{base}{link}")).await.unwrap();
    browser.wait_for(Locator::Css("button.approve")).await;
    // Xero's page, not ours: a screenshot, but axe-core's verdict is not this project's to keep.
    browser.screenshot("Xero's consent page").await;
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
    browser.wait_for_path("/oauth/callback").await;
    let heading = browser.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Connected to Xero");
    let page = browser.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Demo Company (NZ)"), "{page}");
    browser.check_state("Connected to Xero").await;
    browser.close().await;

    let connections = w.connections("acct-browser").await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].status, ConnectionStatus::Connected);
    assert_eq!(connections[0].tenant_id.0, demo::NZ_TENANT_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_grants_two_organisations_chooses_one_on_an_accessible_page_in_chromium() {
    let (_api, w, base) = connect_flow_served().await;
    let browser =
        Browser::start("a_person_who_grants_two_organisations_chooses_one_on_an_accessible_page_in_chromium").await;

    let link = w.link("acct-browser-choice", None, Some("choice-owner@example.com"), w.now().timestamp() + 600);
    browser.goto(&format!("{base}{link}")).await.unwrap();
    browser.wait_for(Locator::Css("button.approve")).await;
    for checkbox in browser.find_all(Locator::Css("input[name=tenant]")).await.unwrap() {
        if !checkbox.is_selected().await.unwrap() {
            checkbox.click().await.unwrap();
        }
    }
    browser.find(Locator::Css("button.approve")).await.unwrap().click().await.unwrap();

    // Both granted, one kept: our page asks which.
    browser.wait_for_path("/oauth/callback").await;
    assert_eq!(browser.wait_for(Locator::Css("h1")).await.text().await.unwrap(), "Choose an organisation");
    browser.check_state("Choose an organisation").await;
    let nz = format!("input[name=tenant_id][value='{}']", demo::NZ_TENANT_ID);
    browser.find(Locator::Css(&nz)).await.unwrap().click().await.unwrap();
    let keep = browser.find(Locator::Css("button#keep")).await.unwrap();
    assert_eq!(browser.click_and_wait_for_page(keep).await.path(), "/oauth/choose");
    assert_eq!(browser.wait_for(Locator::Css("h1")).await.text().await.unwrap(), "Connected to Xero");
    browser.check_state("Connected to Xero").await;
    browser.close().await;

    let connections = w.connections("acct-browser-choice").await;
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].tenant_id.0, demo::NZ_TENANT_ID);
}
