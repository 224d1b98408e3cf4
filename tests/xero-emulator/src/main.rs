//! `xero-emulator [--port N] [--host IP] [--auto-approve] [--seed demo|none] [--openapi-dir DIR]`

use xero_emulator::{Emulator, EmulatorConfig, demo};

fn usage() -> ! {
    eprintln!("usage: xero-emulator [--port N] [--host IP] [--auto-approve] [--seed demo|none] [--openapi-dir DIR]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let mut config = EmulatorConfig::empty();
    let mut demo_seed = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => config.port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--host" => config.host = args.next().and_then(|h| h.parse().ok()).unwrap_or_else(|| usage()),
            "--auto-approve" => config.settings.auto_approve = true,
            "--openapi-dir" => config.openapi_dir = Some(args.next().map(Into::into).unwrap_or_else(|| usage())),
            "--seed" => match args.next().as_deref() {
                Some("demo") => demo_seed = true,
                Some("none") => demo_seed = false,
                _ => usage(),
            },
            "--help" | "-h" => usage(),
            _ => usage(),
        }
    }
    if demo_seed {
        config.seed = Some(demo::seed());
    }
    let emu = match Emulator::start(config).await {
        Ok(emu) => emu,
        Err(e) => {
            eprintln!("xero-emulator: cannot start: {e}");
            std::process::exit(1)
        }
    };
    println!("Xero emulator listening on {}", emu.base_url());
    println!("base URL: {}", emu.base_url());
    println!("consent page: {}", emu.authorize_url());
    if demo_seed {
        println!("demo client id: {}", demo::CLIENT_ID);
        println!("demo client secret: {}", demo::CLIENT_SECRET);
        println!("demo redirect URIs: {}", demo::REDIRECT_URIS.join(" "));
        println!("demo user: {}", demo::USER_EMAIL);
        println!(
            "demo tenants: {} (Demo Company (NZ)), {} (Demo Company (AU))",
            demo::NZ_TENANT_ID,
            demo::AU_TENANT_ID
        );
    }
    let _ = tokio::signal::ctrl_c().await;
}
