//! The checkout demo and the dashboard clicked through in headless Chromium (Debian's
//! `chromium`), driven by Playwright's core package: tests/browser/pages.mjs holds the steps
//! and says what each proves. Three services run as they would in production, from the binary:
//! a sandbox one without API_TOKENS that delivers fulfilment notifications, one with
//! API_TOKENS, and one that pays organisers through Stripe Connect (direct charges). Screenshots
//! go to target/screenshots/.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{sqlite_url, Server};

const TOKEN: &str = "browser-test-operator-token-0001";

/// A platform that takes every fulfilment notification (2xx), so that the dashboard shows
/// them delivered. Lives until the test process ends.
fn fulfilment_receiver() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    format!("http://{address}/fulfil")
}

/// `target/screenshots`, next to the test binaries (`target/debug/deps/browser-…`), wherever
/// the target directory is.
fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .ancestors()
        .nth(3)
        .unwrap_or_else(|| Path::new("target"));
    target.join("screenshots")
}

#[tokio::test]
#[ignore = "needs Chromium (apt: chromium) and playwright-core (npm)"]
async fn checkout_and_dashboard_in_chromium() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        tests
            .join("node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed: run scripts/test.sh (or npm ci in tests/browser)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium chromium-driver"
    );

    let (open_dir, locked_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let connect_dir = tempfile::tempdir().unwrap();
    let receiver = fulfilment_receiver();
    let open_log = open_dir.path().join("service.log");
    let open = Server::start_logging(
        &sqlite_url(open_dir.path()),
        &[
            ("FULFILMENT_URL", receiver.as_str()),
            ("FULFILMENT_SECRET", "whsec_browser_test_fulfilment"),
            ("SETTLEMENT_INTERVAL_SECS", "1"),
        ],
        Some(&open_log),
    )
    .await;
    let locked_log = locked_dir.path().join("service.log");
    let locked = Server::start_logging(
        &sqlite_url(locked_dir.path()),
        // At info, every request is logged: none of those lines may hold the token.
        &[("API_TOKENS", TOKEN), ("RUST_LOG", "info")],
        Some(&locked_log),
    )
    .await;

    let connect_log = connect_dir.path().join("service.log");
    let connect = Server::start_logging(
        &sqlite_url(connect_dir.path()),
        &[
            ("CONNECT_CHARGE_TYPE", "direct"),
            ("PLATFORM_FEE_PERCENT", "10"),
            ("STRIPE_SANDBOX_DELAY_MS", "200"),
        ],
        Some(&connect_log),
    )
    .await;

    let screenshots = screenshots_dir();
    // Only this run's pictures, so that none of the checks below passes on an old one.
    let _ = std::fs::remove_dir_all(&screenshots);
    let output = Command::new("node")
        .arg("pages.mjs")
        .current_dir(&tests)
        .env("TMT_OPEN", &open.address)
        .env("TMT_LOCKED", &locked.address)
        .env("TMT_CONNECT", &connect.address)
        .env("TMT_TOKEN", TOKEN)
        .env("TMT_SCREENSHOTS", &screenshots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs (apt: nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    println!("screenshots in {}", screenshots.display());
    drop((open, locked, connect));
    let logs = [&open_log, &locked_log, &connect_log]
        .map(|p| std::fs::read_to_string(p).unwrap_or_default());
    assert!(
        output.status.success(),
        "browser steps failed (screenshots in {}):\n{stdout}\nservice logs:\n{}",
        screenshots.display(),
        logs.join("\n")
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.ends_with(" passed, 0 failed, 0 skipped")),
        "{stdout}"
    );
    for log in &logs {
        assert!(!log.contains(TOKEN), "a token reached the log");
    }
    for page in [
        "checkout-phone.png",
        "checkout-success.png",
        "3ds-challenge.png",
        "dashboard-desktop.png",
        "dashboard-payment.png",
        "dashboard-login.png",
        "checkout-organizer.png",
        "dashboard-payment-organizer.png",
        "dashboard-organizer.png",
        "checkout-oxxo.png",
        "checkout-spei.png",
        "dashboard-awaiting.png",
    ] {
        let png = std::fs::read(screenshots.join(page)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{page} is a PNG");
    }
}
