//! The world the end-to-end tests and the benchmark run in: the Xero emulator, a fresh stack on
//! moto, and every function's handler wired to both, called as Lambda would call them.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use xero_sync_domain::model::{ConnectionKey, TenantId};
use xero_sync_domain::settings::{ConnectionSettings, NewInvoiceStatus, TaxMapping};

use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use xero_emulator::{Emulator, EmulatorConfig, demo};
use xero_sync_domain::model::{AccountId, Connection};
use xero_sync_domain::signing::{Signed, SigningSecret, sign};
use xero_sync_domain::time::Clock;
use xero_sync_runtime::token_provider::RefreshPolicy;
use xero_sync_runtime::{App, Env};
use xero_sync_testkit::{EventInbox, LocalAws, apigw};

pub const PLATFORM_SECRET: &str = "platform-secret-0123456789abcdef0123456789";
/// The Xero app's webhook key, as the emulator signs deliveries with it.
pub const XERO_WEBHOOK_KEY: &str = "xero-webhook-key-for-the-e2e-tests-0000000000000000000000000000";
pub const REDIRECT_URI: &str = "http://localhost:3000/oauth/callback";
pub const RETURN_TO: &str = "https://platform.example.com/settings/xero";

/// The functions read time from the emulator's clock, so moving it moves token expiry for both.
pub struct EmulatorClock(pub xero_emulator::Clock);

impl Clock for EmulatorClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }
}

#[derive(Default, Clone)]
pub struct Options {
    pub multi_org: bool,
    /// A moto server of its own rather than the binary's shared one: for the long runs, so
    /// the other tests do not queue behind them (moto answers one request at a time).
    pub own_moto: bool,
    /// Where Xero sends the browser back; a client registered for it is added to the emulator.
    pub redirect_uri: Option<String>,
    /// The scopes consents ask for (`XERO_SCOPES`), when not the default.
    pub scopes: Option<&'static str>,
    /// Origins that may embed the integration page (`PAGE_FRAME_ANCESTORS`), when not the
    /// default (the origins of `RETURN_TO_ALLOWLIST`).
    pub page_frame_ancestors: Option<String>,
}

/// Xero (the emulator), AWS (moto, a fresh stack) and the two HTTP functions wired to both.
pub struct World {
    /// Its own moto server, when [`Options::own_moto`] asked for one.
    own_moto: Option<xero_sync_testkit::Moto>,
    pub emu: Emulator,
    pub aws: LocalAws,
    pub connect: connect::Connect,
    pub callback: oauth_callback::Callback,
    pub webhook: invoice_push::Webhook,
    /// The hosted integration page (`/integration`, `…/integration-sessions`).
    pub page: integration_page::IntegrationPage,
    /// The push worker, as the queue's Lambda; tests hand it the queue with [`World::work_push_queue`].
    pub worker: invoice_push::Worker,
    /// The import worker, as the import queue's Lambda.
    pub importer: scheduled_import::worker::Worker,
    /// Xero's webhooks in (`POST /xero/webhooks`), shared with the local server
    /// [`World::subscribe_to_xero_webhooks`] starts.
    pub xero_webhook: Arc<scheduled_import::webhook::XeroWebhook>,
    /// The changes worker, as the changes queue's Lambda.
    pub changes: scheduled_import::changes::ChangesWorker,
    pub inbox: EventInbox,
    pub platform: SigningSecret,
    client: (String, String),
    /// The consent cookie, kept and sent back as a browser would.
    pub cookie: std::sync::Mutex<Option<String>>,
    /// Makes every [`World::valid_link`] its own: a connect link works once.
    links: std::sync::atomic::AtomicI64,
    /// The proxies standing in for the functions' IAM roles, alive as long as the world.
    _roles: Vec<xero_sync_testkit::AwsProxy>,
}

impl World {
    pub async fn new() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Self {
        let emu =
            Emulator::start(EmulatorConfig::default().auto_approve(true).approve_tenants(vec![demo::NZ_TENANT_ID]))
                .await
                .expect("the emulator starts");
        let moto = options.own_moto.then(|| xero_sync_testkit::Moto::start().expect("moto starts"));
        let aws = match &moto {
            Some(moto) => LocalAws::provision_on(moto, &xero_sync_testkit::unique_name("e2e")).await.expect("stack"),
            None => LocalAws::provision("e2e").await,
        };
        let inbox = EventInbox::subscribe(&aws.sdk, &aws.stack, "EventBus").await.expect("inbox");
        let redirect_uri = options.redirect_uri.clone().unwrap_or_else(|| REDIRECT_URI.to_owned());
        let client = if redirect_uri == REDIRECT_URI {
            (demo::CLIENT_ID.to_owned(), demo::CLIENT_SECRET.to_owned())
        } else {
            let client = ("E2ETESTCLIENT0000000000000000001".to_owned(), "e2e-test-client-secret".to_owned());
            emu.add_client(xero_emulator::ClientSeed {
                client_id: client.0.clone(),
                client_secret: client.1.clone(),
                redirect_uris: vec![redirect_uri.clone()],
                name: Some("xero-sync e2e".into()),
            })
            .expect("client registers");
            client
        };
        let env = Self::env(&options, &redirect_uri);
        // Each function reaches AWS as its role lets it: moto enforces no IAM, so a proxy that
        // answers AccessDenied to any other action stands in for the role in the template.
        let moto_endpoint =
            moto.as_ref().map_or_else(|| xero_sync_testkit::Moto::shared().endpoint(), |m| m.endpoint());
        let template = xero_sync_testkit::Template::from_repo().expect("the template reads");
        let mut roles = Vec::new();
        let mut as_role = async |function: &str| {
            let proxy = xero_sync_testkit::AwsProxy::start(moto_endpoint).await.expect("proxy starts");
            proxy.allow_only(template.function_actions(function).expect("the function has a role"));
            let app = Self::app_on(&emu, &aws, &proxy.sdk_config(&aws.sdk), &client, &[]);
            roles.push(proxy);
            app
        };
        let connect = connect::Connect::new(as_role("ConnectFunction").await, &env).expect("connect config");
        let callback =
            oauth_callback::Callback::new(as_role("OAuthCallbackFunction").await, &env).expect("callback config");
        let mut page_vars = vec![("PUSH_QUEUE_URL", aws.stack.reference("PushQueue"))];
        if let Some(origins) = &options.page_frame_ancestors {
            page_vars.push(("PAGE_FRAME_ANCESTORS", origins.as_str()));
        }
        let page_env = Self::env_with(&options, &redirect_uri, &page_vars);
        let page = integration_page::IntegrationPage::new(as_role("IntegrationPageFunction").await, &page_env)
            .expect("integration page config");
        let webhook_env = Self::push_env(&aws);
        let webhook =
            invoice_push::Webhook::new(as_role("InvoiceWebhookFunction").await, &webhook_env).expect("webhook config");
        let mut worker =
            invoice_push::Worker::new(as_role("InvoicePushWorkerFunction").await, &webhook_env).expect("worker config");
        worker.policy = test_policy();
        worker.queue = Self::held_at_once(worker.queue);
        let import_env = Env::from_pairs([("IMPORT_QUEUE_URL", aws.stack.reference("ImportQueue"))]);
        let mut importer = scheduled_import::worker::Worker::new(as_role("ImportWorkerFunction").await, &import_env)
            .expect("import worker config");
        importer.policy.max_wait = std::time::Duration::from_millis(50);
        importer.queue = Self::held_at_once(importer.queue);
        let changes_env = Env::from_pairs([
            ("XERO_WEBHOOK_KEY", XERO_WEBHOOK_KEY),
            ("CHANGES_QUEUE_URL", aws.stack.reference("ChangesQueue")),
        ]);
        let receiver = as_role("XeroWebhookFunction").await;
        let xero_webhook = Arc::new(
            scheduled_import::webhook::XeroWebhook::new(aws_sdk_sqs::Client::new(&receiver.sdk), &changes_env)
                .expect("xero webhook config"),
        );
        let mut changes =
            scheduled_import::changes::ChangesWorker::new(as_role("XeroChangesWorkerFunction").await, &changes_env)
                .expect("changes worker config");
        changes.policy.max_wait = std::time::Duration::from_millis(50);
        changes.queue = Self::held_at_once(changes.queue);
        Self {
            emu,
            aws,
            connect,
            callback,
            webhook,
            page,
            worker,
            importer,
            xero_webhook,
            changes,
            inbox,
            platform: SigningSecret::new(PLATFORM_SECRET.as_bytes()),
            client,
            cookie: Default::default(),
            links: Default::default(),
            _roles: roles,
            own_moto: moto,
        }
    }

    /// A worker's queue whose held messages SQS delivers at once: the test moves the clock to
    /// their `not_before` instead of waiting (see [`World::work_push_queue`]).
    fn held_at_once(queue: xero_sync_aws::Queue) -> xero_sync_aws::Queue {
        queue.with_max_delay(std::time::Duration::ZERO)
    }

    /// The moto server this world's stack is on.
    pub fn moto(&self) -> &xero_sync_testkit::Moto {
        self.own_moto.as_ref().unwrap_or_else(|| xero_sync_testkit::Moto::shared())
    }

    /// Revokes a refresh token at Xero's identity service (RFC 7009), as Xero does when the
    /// user removes the app there: the grant and its connections end.
    pub async fn revoke_at_xero(&self, refresh_token: &xero_sync_domain::tokens::RefreshToken) {
        let response = reqwest::Client::new()
            .post(format!("{}/connect/revocation", self.emu.base_url()))
            .basic_auth(&self.client.0, Some(&self.client.1))
            .form(&[("token", refresh_token.secret().as_str()), ("token_type_hint", "refresh_token")])
            .send()
            .await
            .expect("the emulator answers");
        assert!(response.status().is_success(), "revocation: {}", response.status());
    }

    /// The invoice webhook's and the push worker's own settings.
    fn push_env(aws: &LocalAws) -> Env {
        Env::from_pairs([
            ("PLATFORM_SIGNING_SECRETS", PLATFORM_SECRET),
            ("PUSH_QUEUE_URL", aws.stack.reference("PushQueue")),
            ("UPLOADS_BUCKET", aws.stack.reference("UploadsBucket")),
            // moto answers every bucket at its one address.
            ("S3_PATH_STYLE", "true"),
        ])
    }

    /// Another function process: its own token cache, as separate Lambdas have.
    pub fn new_app(&self) -> App {
        Self::app_for(&self.emu, &self.aws, &self.client)
    }

    /// The webhook and the push worker as processes reaching AWS through `proxy`, which counts
    /// their calls or cuts them off.
    pub fn reach_aws_through(&mut self, proxy: &xero_sync_testkit::AwsProxy) {
        let sdk = proxy.sdk_config(&self.aws.sdk);
        let env = Self::push_env(&self.aws);
        self.webhook = invoice_push::Webhook::new(self.new_app_via(&sdk), &env).expect("webhook config");
        let policy = self.worker.policy;
        self.worker = invoice_push::Worker::new(self.new_app_via(&sdk), &env).expect("worker config");
        self.worker.policy = policy;
        self.worker.queue = Self::held_at_once(self.worker.queue.clone());
    }

    /// Adds `count` contacts to the demo organisation through Xero's API, `per_call` a request,
    /// the clock moving a second between requests as it would.
    pub async fn add_contacts(&self, account: &str, count: usize, per_call: usize) {
        let connection = self.connections(account).await.remove(0);
        for start in (0..count).step_by(per_call) {
            let contacts: Vec<Value> = (start..(start + per_call).min(count))
                .map(|n| match n % 3 {
                    0 => json!({ "Name": format!("Imported Contact {n:04}"), "EmailAddress": format!("c{n}@import.example") }),
                    1 => json!({ "Name": format!("Person {n:04}"), "FirstName": "Ana", "LastName": format!("Number {n}") }),
                    _ => json!({ "Name": format!("Solo{n:04}"), "Phones": [{ "PhoneType": "MOBILE", "PhoneNumber": "555 0101" }] }),
                })
                .collect();
            let request = xero_sync_xero::ApiRequest::new("/Contacts");
            self.worker
                .app
                .tokens
                .put::<_, Value>(&connection, &request, &json!({ "Contacts": contacts }))
                .await
                .unwrap();
            self.emu.clock().advance(std::time::Duration::from_secs(1));
        }
    }

    /// A function process that waits `seconds` for Xero instead of one: for tests about
    /// something other than timeouts, so that a loaded machine's slow answer is not taken as a
    /// lost one.
    pub fn new_app_waiting_for_xero(&self, seconds: u32) -> App {
        let seconds = seconds.to_string();
        Self::app_with(&self.emu, &self.aws, &self.client, &[("XERO_TIMEOUT_SECONDS", seconds.as_str())])
    }

    /// Another function process, with these settings besides the usual ones.
    pub fn new_app_with(&self, extra: &[(&str, &str)]) -> App {
        Self::app_with(&self.emu, &self.aws, &self.client, extra)
    }

    /// A function process whose emails SES refuses for good (its sender is not a verified identity).
    pub fn new_app_with_unverified_sender(&self) -> App {
        Self::app_with(&self.emu, &self.aws, &self.client, &[("EMAIL_FROM", "unverified@nowhere.example")])
    }

    /// A function process that cannot reach SES for now (its calls are dropped), and the proxy
    /// doing it, which must live as long as the process is used.
    pub async fn new_app_with_mail_down(&self) -> (App, xero_sync_testkit::AwsProxy) {
        let proxy = xero_sync_testkit::AwsProxy::start(self.moto().endpoint()).await.expect("proxy starts");
        proxy.fail("ses", u64::MAX);
        (self.new_app_via(&proxy.sdk_config(&self.aws.sdk)), proxy)
    }

    fn app_for(emu: &Emulator, aws: &LocalAws, client: &(String, String)) -> App {
        Self::app_with(emu, aws, client, &[])
    }

    /// Another function process reaching AWS through `sdk` (a proxy in front of moto, say).
    pub fn new_app_via(&self, sdk: &aws_config::SdkConfig) -> App {
        Self::app_on(&self.emu, &self.aws, sdk, &self.client, &[])
    }

    fn app_with(emu: &Emulator, aws: &LocalAws, client: &(String, String), extra: &[(&str, &str)]) -> App {
        Self::app_on(emu, aws, &aws.sdk, client, extra)
    }

    fn app_on(
        emu: &Emulator,
        aws: &LocalAws,
        sdk: &aws_config::SdkConfig,
        client: &(String, String),
        extra: &[(&str, &str)],
    ) -> App {
        let base = emu.base_url();
        let authorize = format!("{base}/identity/connect/authorize");
        let mut vars: Vec<(&str, &str)> = vec![
            ("XERO_CLIENT_ID", client.0.as_str()),
            ("XERO_CLIENT_SECRET", client.1.as_str()),
            ("XERO_AUTHORIZE_URL", authorize.as_str()),
            ("XERO_IDENTITY_URL", base.as_str()),
            ("XERO_API_URL", base.as_str()),
            ("XERO_TIMEOUT_SECONDS", "1"),
            // The clock stands still unless the test moves it: waiting here for a token to
            // refill would wait for nothing, so a governed call is held at once.
            ("XERO_GOVERNOR_WAIT_MS", "0"),
        ];
        vars.retain(|(name, _)| !extra.iter().any(|(given, _)| given == name));
        vars.extend_from_slice(extra);
        let config = aws.config(&vars);
        let policy = RefreshPolicy { poll_every: std::time::Duration::from_millis(20), ..RefreshPolicy::default() };
        App::with_clock(config, sdk, Arc::new(EmulatorClock(emu.clock().clone())), policy).expect("app")
    }

    fn env(options: &Options, redirect_uri: &str) -> Env {
        Self::env_with(options, redirect_uri, &[])
    }

    /// [`World::env`] and a function's own variables.
    fn env_with(options: &Options, redirect_uri: &str, more: &[(&str, &str)]) -> Env {
        let mut pairs = vec![
            ("PLATFORM_SIGNING_SECRETS", PLATFORM_SECRET),
            ("OAUTH_REDIRECT_URI", redirect_uri),
            ("RETURN_TO_ALLOWLIST", "https://platform.example.com/settings/"),
            ("MULTI_ORG", if options.multi_org { "true" } else { "false" }),
        ];
        if let Some(scopes) = options.scopes {
            pairs.push(("XERO_SCOPES", scopes));
        }
        pairs.extend_from_slice(more);
        Env::from_pairs(pairs)
    }

    /// [`World::work_push_queue`], moving time on at most `steps` times: what is still held
    /// after that stays on the queue.
    pub async fn work_push_queue_for(&self, steps: usize) -> QueueRun {
        self.work_queue_steps("PushQueue", Some(steps), false).await
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.emu.clock().now()
    }

    /// A connect link as the platform signs it (path and query).
    pub fn link(&self, account: &str, return_to: Option<&str>, email: Option<&str>, expires: i64) -> String {
        let url = connect::connect_link(
            &url::Url::parse("https://xero-sync.test/").unwrap(),
            &self.platform,
            account,
            return_to,
            email,
            expires,
        );
        format!("{}?{}", url.path(), url.query().unwrap_or_default())
    }

    /// A fresh link each time (a link works once), valid for about ten minutes.
    pub fn valid_link(&self, account: &str) -> String {
        // A second apart, so that two links for one account at one instant differ; the cycle
        // keeps every link at least five minutes from expiring however many a run makes.
        let n = self.links.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 300;
        self.link(account, Some(RETURN_TO), Some("owner@example.com"), self.now().timestamp() + 600 - n)
    }

    pub async fn get_connect(&self, path_and_query: &str) -> Response<Body> {
        let response = connect::handle(&self.connect, apigw::request("GET", path_and_query, &[], None)).await;
        self.keep_cookie(&response);
        response
    }

    fn keep_cookie(&self, response: &Response<Body>) {
        let prefix = format!("{}=", xero_sync_http::CONSENT_COOKIE);
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            if let Some(rest) = text.strip_prefix(&prefix) {
                let value = rest.split(';').next().unwrap().to_owned();
                *self.cookie.lock().unwrap() = (!value.is_empty()).then_some(value);
            }
        }
    }

    fn cookie_header(&self) -> Option<String> {
        self.cookie.lock().unwrap().as_ref().map(|v| format!("{}={v}", xero_sync_http::CONSENT_COOKIE))
    }

    /// A signed call to the connection API.
    pub async fn api(&self, method: &str, path: &str) -> Response<Body> {
        let header = sign(&self.platform, self.now(), &Signed::Api { method, path_and_query: path, body: b"" });
        connect::handle(&self.connect, apigw::request(method, path, &[("x-xerosync-signature", &header)], None)).await
    }

    /// A call to the invoice API sent to `sent`, signed over `signed` (another spelling of it).
    pub async fn invoice_api_signed_over(&self, method: &str, sent: &str, signed: &str) -> Response<Body> {
        let header = sign(&self.platform, self.now(), &Signed::Api { method, path_and_query: signed, body: b"" });
        let request = apigw::request(method, sent, &[("x-xerosync-signature", &header)], None);
        invoice_push::handle_webhook(&self.webhook, request).await
    }

    /// A signed call to the connection API with a JSON body.
    pub async fn api_json(&self, method: &str, path: &str, body: &str) -> Response<Body> {
        let header =
            sign(&self.platform, self.now(), &Signed::Api { method, path_and_query: path, body: body.as_bytes() });
        let headers = [("x-xerosync-signature", header.as_str()), ("content-type", "application/json")];
        connect::handle(&self.connect, apigw::request(method, path, &headers, Some(body))).await
    }

    /// A signed call to the invoice API (backfill, an invoice's status).
    pub async fn invoice_api(&self, method: &str, path: &str, body: &str) -> Response<Body> {
        let header =
            sign(&self.platform, self.now(), &Signed::Api { method, path_and_query: path, body: body.as_bytes() });
        let headers = [("x-xerosync-signature", header.as_str()), ("content-type", "application/json")];
        let body = (!body.is_empty()).then_some(body);
        invoice_push::handle_webhook(&self.webhook, apigw::request(method, path, &headers, body)).await
    }

    /// The platform delivering an invoice event, signed `at` (now when `None`).
    pub async fn post_webhook(&self, body: &str, at: Option<DateTime<Utc>>) -> Response<Body> {
        let header = sign(&self.platform, at.unwrap_or_else(|| self.now()), &Signed::Webhook { body: body.as_bytes() });
        let headers = [("x-xerosync-signature", header.as_str()), ("content-type", "application/json")];
        invoice_push::handle_webhook(&self.webhook, apigw::request("POST", "/webhooks/invoices", &headers, Some(body)))
            .await
    }

    /// Every invoice event waiting on the push queue, taken off it (bus events and S3's messages
    /// are dropped).
    pub async fn queued_pushes(&self) -> Vec<invoice_push::PushMessage> {
        let sqs = aws_sdk_sqs::Client::new(&self.aws.sdk);
        let url = self.aws.stack.reference("PushQueue");
        let mut out = Vec::new();
        loop {
            let received = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
                // Bus events, and S3's test message sent when the bucket's notifications were set up.
                let ours =
                    body.get("detail-type").is_none() && body.get("Event").is_none() && body.get("Records").is_none();
                if ours {
                    match serde_json::from_value(body).unwrap() {
                        invoice_push::QueueMessage::Event(push) => out.push(*push),
                        other => panic!("not an invoice event: {other:?}"),
                    }
                }
                sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
            }
        }
    }

    /// Runs the push worker over the push queue until it is empty, as Lambda's SQS trigger
    /// would: batches as large as the template's, messages the worker reports as failed stay on the queue. A
    /// message the worker holds back (Retry-After) is made visible again once nothing else is
    /// left, and the clock moves a minute on: the test moves time instead of waiting for it.
    pub async fn work_push_queue(&self) -> QueueRun {
        self.work_queue("PushQueue").await
    }

    /// [`World::work_push_queue`] for the import queue and the import worker.
    pub async fn work_import_queue(&self) -> QueueRun {
        self.work_queue("ImportQueue").await
    }

    /// [`World::work_push_queue`] for the changes queue and the changes worker.
    pub async fn work_changes_queue(&self) -> QueueRun {
        self.work_queue("ChangesQueue").await
    }

    /// A delivery to `POST /xero/webhooks`, signed with `signature` (none when `None`), as
    /// API Gateway hands it to the function.
    pub async fn post_xero_webhook(&self, body: &str, signature: Option<&str>) -> Response<Body> {
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        headers.extend(signature.iter().map(|s| ("x-xero-signature", *s)));
        let request = apigw::request("POST", "/xero/webhooks", &headers, Some(body));
        scheduled_import::webhook::handle_xero_webhook(&self.xero_webhook, request, self.now()).await
    }

    /// Serves `POST /xero/webhooks` on a local port and subscribes the emulator's app to it,
    /// so that changes made in the emulator are delivered there (by
    /// [`Emulator::deliver_webhooks`]). The server stops when the returned value is dropped.
    pub async fn subscribe_to_xero_webhooks(&self) -> xero_sync_testkit::LocalApi {
        let mut api = xero_sync_testkit::LocalApi::bind().await.expect("a free port");
        let url = format!("{}/xero/webhooks", api.base_url());
        let (webhook, clock) = (self.xero_webhook.clone(), self.emu.clock().clone());
        api.serve(Arc::new(move |request| {
            let (webhook, now) = (webhook.clone(), clock.now());
            Box::pin(async move { scheduled_import::webhook::handle_xero_webhook(&webhook, request, now).await })
        }));
        self.emu.update_settings(|s| {
            s.webhooks = Some(xero_emulator::WebhookSubscription { url, key: XERO_WEBHOOK_KEY.into() })
        });
        api
    }

    /// [`World::work_import_queue`], but stopping after the clock has moved `steps` times,
    /// whatever is left on the queue.
    pub async fn work_import_queue_for(&self, steps: usize) -> QueueRun {
        self.work_queue_steps("ImportQueue", Some(steps), false).await
    }

    async fn work_queue(&self, queue: &str) -> QueueRun {
        self.work_queue_steps(queue, None, false).await
    }

    /// [`World::work_push_queue`], but time moves only as far as the first held message is due
    /// (a message handed back without a time is due a minute on): for the bench's rate figure,
    /// in which every second of waiting counts.
    pub async fn work_push_queue_in_exact_time(&self) -> QueueRun {
        self.work_queue_steps("PushQueue", None, true).await
    }

    async fn work_queue_steps(&self, queue: &str, mut steps: Option<usize>, exact: bool) -> QueueRun {
        let sqs = aws_sdk_sqs::Client::new(&self.aws.sdk);
        let url = self.aws.stack.reference(queue);
        let mut run = QueueRun::default();
        // Message id → the receipt handle it was last put aside under, and when it is due.
        let mut held_back: Vec<(String, String, Option<DateTime<Utc>>)> = Vec::new();
        let mut held_seen = std::collections::HashSet::new();
        for _ in 0..if exact { 20_000 } else { 2000 } {
            let batch_size = match queue {
                "PushQueue" => PUSH_BATCH,
                "ChangesQueue" => CHANGES_BATCH,
                _ => IMPORT_BATCH,
            };
            let messages = xero_sync_testkit::lambda::receive_batch(&sqs, url, batch_size).await.unwrap();
            if messages.is_empty() {
                if held_back.is_empty() {
                    return run;
                }
                // Stopping: left on the queue as it found them, to be worked later. Otherwise time
                // passes: a minute (Xero's longest rate-limit window, and all a retry asks for in
                // these tests), or until the first held message is due.
                let stopping = steps == Some(0);
                if !stopping {
                    let now = self.now();
                    let minute = std::time::Duration::from_secs(60);
                    let step = if exact {
                        let later = now + chrono::Duration::minutes(1);
                        let due = held_back.iter().map(|(_, _, due)| due.unwrap_or(later)).min().unwrap_or(now);
                        (due - now).to_std().unwrap_or_default()
                    } else {
                        let due = held_back.iter().filter_map(|(_, _, due)| *due).min().unwrap_or(now);
                        (due - now).to_std().unwrap_or_default().max(minute)
                    };
                    self.emu.clock().advance(step);
                }
                for (_, handle, _) in held_back.drain(..) {
                    sqs.change_message_visibility()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .unwrap();
                }
                if stopping {
                    return run;
                }
                steps = steps.map(|n| n - 1);
                continue;
            }
            // A message held back for only a moment may be back already, under a new handle.
            held_back.retain(|(id, _, _)| !messages.iter().any(|m| m.message_id.as_deref() == Some(id)));
            // A message the worker held (sent again with a time to work it, SQS's delay capped
            // at nothing here) waits for the clock to reach that time, as SQS would have.
            let not_before = |m: &aws_sdk_sqs::types::Message| {
                let attribute = m.message_attributes.as_ref()?.get(xero_sync_runtime::queue::NOT_BEFORE)?;
                let due = DateTime::parse_from_rfc3339(attribute.string_value.as_deref()?).ok()?;
                Some(due.with_timezone(&Utc))
            };
            let now = self.now();
            let mut due_now = Vec::new();
            for m in messages {
                let due = not_before(&m);
                if due.is_some() && held_seen.insert(m.message_id.clone().unwrap_or_default()) {
                    run.held += 1;
                }
                match due {
                    Some(due) if due > now => {
                        let handle = m.receipt_handle.clone().unwrap();
                        sqs.change_message_visibility()
                            .queue_url(url)
                            .receipt_handle(&handle)
                            .visibility_timeout(600)
                            .send()
                            .await
                            .unwrap();
                        held_back.push((m.message_id.clone().unwrap_or_default(), handle, Some(due)));
                    }
                    _ => due_now.push(m),
                }
            }
            if due_now.is_empty() {
                continue;
            }
            let messages = due_now;
            let event = xero_sync_testkit::lambda::sqs_event(&messages);
            let response = match queue {
                "PushQueue" => invoice_push::handle_queue(&self.worker, event).await,
                "ChangesQueue" => scheduled_import::changes::handle(&self.changes, event).await,
                _ => scheduled_import::worker::handle(&self.importer, event).await,
            };
            let mut done = Vec::new();
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                run.received += 1;
                if response.batch_item_failures.iter().any(|f| f.item_identifier == id) {
                    run.handed_back += 1;
                    held_back.push((id, m.receipt_handle.unwrap(), None));
                } else {
                    done.push(m.receipt_handle.unwrap());
                }
            }
            // As Lambda does: deleted ten to a call.
            xero_sync_testkit::lambda::delete_done(&sqs, url, &done).await.unwrap();
        }
        panic!("{queue} did not drain: {run:?}");
    }

    pub async fn get_callback(&self, path_and_query: &str) -> Response<Body> {
        let cookie = self.cookie_header();
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        let response =
            oauth_callback::handle(&self.callback, apigw::request("GET", path_and_query, &headers, None)).await;
        self.keep_cookie(&response);
        response
    }

    pub async fn post_choice(&self, form: &str) -> Response<Body> {
        let cookie = self.cookie_header();
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        headers.extend(cookie.iter().map(|c| ("cookie", c.as_str())));
        let response =
            oauth_callback::handle(&self.callback, apigw::request("POST", "/oauth/choose", &headers, Some(form))).await;
        self.keep_cookie(&response);
        response
    }

    /// Follows the connect link to Xero's consent (auto-approved) and returns the callback's
    /// path and query that Xero redirected the browser to.
    pub async fn consent(&self, link: &str) -> String {
        let response = self.get_connect(link).await;
        assert_eq!(response.status(), 302, "{}", apigw::body_text(&response));
        let authorize = location(&response);
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let at_xero = http.get(&authorize).send().await.unwrap();
        assert_eq!(at_xero.status(), 302, "the emulator approves and redirects");
        let back = at_xero.headers()["location"].to_str().unwrap().to_owned();
        assert!(back.starts_with(self.connect.oauth.redirect_uri.as_str()), "{back}");
        let back = url::Url::parse(&back).unwrap();
        format!("{}?{}", back.path(), back.query().unwrap_or_default())
    }

    /// The whole connect flow for `account`, returning the callback's response.
    pub async fn connect_account(&self, account: &str) -> Response<Body> {
        let callback = self.consent(&self.valid_link(account)).await;
        self.get_callback(&callback).await
    }

    pub async fn connections(&self, account: &str) -> Vec<Connection> {
        self.aws.store_connections(&AccountId::parse(account).unwrap()).await
    }
}

/// The batch sizes of the queues' event sources in `infra/template.yaml`.
pub const PUSH_BATCH: usize = 50;
pub const IMPORT_BATCH: usize = 1;
pub const CHANGES_BATCH: usize = 10;

/// What one [`World::work_push_queue`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct QueueRun {
    /// Messages handed to the worker (a message handed back counts each time).
    pub received: usize,
    /// Messages the worker reported as failed, to be tried again (using up a receive).
    pub handed_back: usize,
    /// Messages the worker held for Xero's limits: sent again to be worked later, as new
    /// messages, so that the wait uses up no receive.
    pub held: usize,
}

/// Quick retries, and nothing slower than a blink waited for in-process: a longer Retry-After
/// goes back to the queue, where [`World::work_push_queue`] moves time on.
pub fn test_policy() -> invoice_push::push::PushPolicy {
    invoice_push::push::PushPolicy {
        attempts: 6,
        backoff: std::time::Duration::from_millis(1),
        max_wait: std::time::Duration::from_millis(50),
        ..Default::default()
    }
}

pub fn location(response: &Response<Body>) -> String {
    response.headers().get("location").expect("a Location header").to_str().unwrap().to_owned()
}

pub fn body(response: &Response<Body>) -> String {
    apigw::body_text(response)
}

pub fn json(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_str(&body(response)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", body(response)))
}

/// Events of one type that reached the platform's subscription (others drained are dropped).
/// Every event drained is checked against its schema in `docs/contracts/events`.
pub async fn events_of(inbox: &EventInbox, kind: &str) -> Vec<serde_json::Value> {
    let all = inbox.drain().await.unwrap();
    for event in &all {
        xero_sync_testkit::event_schemas::assert_valid(&event["detail"]);
    }
    all.into_iter().filter(|e| e["detail-type"] == kind).collect()
}

// Only awaited by these tests, never across threads, so no Send bound is needed.
#[allow(async_fn_in_trait)]
pub trait StoreConnections {
    async fn store_connections(&self, account: &AccountId) -> Vec<Connection>;
}

impl StoreConnections for LocalAws {
    async fn store_connections(&self, account: &AccountId) -> Vec<Connection> {
        self.store().account_connections(account).await.unwrap()
    }
}

// Invoices: the contract's example event, settings, and a connected world ready to push.

pub const OWNER: &str = "owner@example.com";

pub fn key(account: &str) -> ConnectionKey {
    ConnectionKey {
        account_id: xero_sync_domain::model::AccountId::parse(account).unwrap(),
        tenant_id: TenantId(demo::NZ_TENANT_ID),
    }
}

pub fn new_customer(id: &str, name: &str) -> Value {
    json!({ "id": id, "name": name, "email": format!("{id}@customers.example"), "phone": "+64 21 555 0101",
            "addresses": [{ "type": "street", "line1": "9 Kauri Rd", "city": "Whangarei", "country": "NZ" }] })
}

/// A contract example (`docs/contracts/examples/{name}`), for `account`, delivered as `delivery`.
pub fn contract_example(name: &str, account: &str, delivery: &str) -> Value {
    let path = format!("{}/../../docs/contracts/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut e: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    e["account_id"] = json!(account);
    e["delivery_id"] = json!(delivery);
    e
}

/// The contract's example event (`invoice-created.json`), for `account`, delivered as `delivery`.
pub fn example_event(account: &str, delivery: &str) -> Value {
    contract_example("invoice-created.json", account, delivery)
}

/// The contract's example event, for `account`, as invoice `id` / `number` for `customer`.
pub fn event(account: &str, delivery: &str, id: &str, number: &str, customer: Value) -> Value {
    let mut e = example_event(account, delivery);
    e["invoice"]["id"] = json!(id);
    e["invoice"]["number"] = json!(number);
    e["customer"] = customer;
    e
}

pub fn settings(status: NewInvoiceStatus) -> ConnectionSettings {
    ConnectionSettings {
        default_sales_account_code: Some("200".into()),
        new_invoice_status: status,
        tax_mapping: vec![TaxMapping {
            platform_tax_rate_id: "gst".into(),
            rate: Decimal::from(15),
            components: vec![],
            xero_tax_type: "OUTPUT2".into(),
        }],
        ..Default::default()
    }
}

/// Connected, with settings saved (sales account 200, platform tax rate gst → OUTPUT2), and the connect's own events drained.
pub async fn ready(account: &str, status: NewInvoiceStatus) -> World {
    ready_with(account, status, Options::default()).await
}

/// [`ready`] with [`Options`].
pub async fn ready_with(account: &str, status: NewInvoiceStatus, options: Options) -> World {
    let w = World::with(options).await;
    w.connect_account(account).await;
    w.aws.store().put_settings(&key(account), 0, &settings(status)).await.unwrap();
    w.work_push_queue().await;
    w.inbox.drain().await.unwrap();
    w.emu.reset_counters();
    w
}

pub async fn deliver(w: &World, body: &Value) {
    let response = w.post_webhook(&body.to_string(), None).await;
    assert_eq!(response.status(), 202, "{}", crate::body(&response));
}

pub fn in_xero(w: &World, number: &str) -> Vec<Value> {
    w.emu.invoices(demo::NZ_TENANT_ID).into_iter().filter(|i| i["InvoiceNumber"] == number).collect()
}
