//! Stripe's official SDKs against the `stripe-sandbox` binary: Python (`stripe` from PyPI) and
//! Node (`stripe` from npm). Each script prints one line per check and exits non-zero on any
//! failure.

use std::process::Command;

use crate::helpers::*;

#[test]
#[ignore = "needs Stripe's Python SDK (scripts/test.sh installs it)"]
fn stripe_python_sdk_drives_the_sandbox() {
    let python = python_with_stripe();
    let receiver = free_port();
    let secret = "whsec_sdk_sandbox_test";
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Process::start(
        &dir.path().join("state.db"),
        Some((&format!("http://127.0.0.1:{receiver}/hooks"), secret)),
    );
    let mut c = Command::new(python);
    c.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/sdk_sandbox.py"
    ))
    .args([
        sandbox.base.clone(),
        receiver.to_string(),
        secret.to_string(),
    ]);
    run_peer(c, "Stripe's Python SDK");
}

#[test]
#[ignore = "needs Stripe's Node SDK (scripts/test.sh installs it)"]
fn stripe_node_sdk_drives_the_sandbox_by_host_and_port() {
    let dir = node_peer();
    let receiver = free_port();
    let secret = "whsec_sdk_node_test";
    let state = tempfile::tempdir().unwrap();
    let sandbox = Process::start(
        &state.path().join("state.db"),
        Some((&format!("http://127.0.0.1:{receiver}/hooks"), secret)),
    );
    let mut c = Command::new("node");
    c.arg(dir.join("sdk_sandbox.mjs")).args([
        "127.0.0.1".to_string(),
        sandbox.port().to_string(),
        receiver.to_string(),
        secret.to_string(),
    ]);
    run_peer(c, "Stripe's Node SDK");
}
