//! Stripe's official Python SDK against the standalone sandbox (`tmt-payments sandbox`), with
//! the sandbox's webhooks verified by `stripe.Webhook.construct_event` at a receiver the script
//! runs. Skipped with a reason when the SDK is not installed; mandatory under `CI=true`.

mod common;

use std::process::Command;

use common::process::*;
use common::*;

#[test]
fn stripe_python_sdk_drives_the_standalone_sandbox() {
    let Some(python) = python_peer(&["stripe"]) else {
        return;
    };
    let port = free_port();
    let receiver = free_port();
    let secret = "whsec_sdk_sandbox_test";
    let dir = tempfile::tempdir().unwrap();
    let mut sandbox = command(&sqlite_url(dir.path()))
        .args([
            "sandbox",
            "--port",
            &port.to_string(),
            "--webhook-url",
            &format!("http://127.0.0.1:{receiver}/hooks"),
            "--webhook-secret",
            secret,
        ])
        .spawn()
        .unwrap();
    let address = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/sdk_sandbox.py"
        ))
        .args([
            format!("http://{address}"),
            receiver.to_string(),
            secret.to_string(),
        ])
        .output()
        .unwrap();
    let _ = sandbox.kill();
    let _ = sandbox.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "SDK checks failed:\n{stdout}");
    assert!(stdout.contains("15 passed, 0 failed"), "{stdout}");
}
