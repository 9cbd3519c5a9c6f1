//! Stripe's official SDKs against the `stripe-sandbox` binary: Python (`stripe` from PyPI) and
//! Node (`stripe` from npm). Each script prints one line per check and exits non-zero on any
//! failure.

use std::ffi::OsStr;
use std::process::Command;

use crate::helpers::*;

/// Starts the sandbox binary delivering webhooks signed with `secret` to a free port, and runs
/// `program script ADDRESS… RECEIVER_PORT SECRET`, where `address` says where the sandbox is.
fn drive(
    what: &str,
    program: impl AsRef<OsStr>,
    script: impl AsRef<OsStr>,
    address: impl FnOnce(&Process) -> Vec<String>,
    secret: &str,
) {
    let receiver = free_port();
    let (_dir, state) = state_file();
    let sandbox = Process::start(
        &state,
        Some((&format!("http://127.0.0.1:{receiver}/hooks"), secret)),
    );
    let mut command = Command::new(program);
    command
        .arg(script)
        .args(address(&sandbox))
        .args([receiver.to_string(), secret.to_string()]);
    run_peer(command, what);
}

#[test]
#[ignore = "needs Stripe's Python SDK (scripts/test.sh installs it)"]
fn stripe_python_sdk_drives_the_sandbox() {
    drive(
        "Stripe's Python SDK",
        python_with_stripe(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/sdk_sandbox.py"),
        |sandbox| vec![sandbox.base.clone()],
        "whsec_sdk_sandbox_test",
    );
}

#[test]
#[ignore = "needs Stripe's Node SDK (scripts/test.sh installs it)"]
fn stripe_node_sdk_drives_the_sandbox_by_host_and_port() {
    drive(
        "Stripe's Node SDK",
        "node",
        node_peer().join("sdk_sandbox.mjs"),
        |sandbox| vec!["127.0.0.1".into(), sandbox.port().to_string()],
        "whsec_sdk_node_test",
    );
}

#[test]
#[ignore = "needs Stripe's Python SDK (scripts/test.sh installs it)"]
fn stripe_python_sdk_drives_connect() {
    drive(
        "Stripe's Python SDK (Connect)",
        python_with_stripe(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/sdk_connect.py"),
        |sandbox| vec![sandbox.base.clone()],
        "whsec_sdk_connect_test",
    );
}

#[test]
#[ignore = "needs Stripe's Node SDK (scripts/test.sh installs it)"]
fn stripe_node_sdk_drives_connect() {
    drive(
        "Stripe's Node SDK (Connect)",
        "node",
        node_peer().join("sdk_connect.mjs"),
        |sandbox| vec!["127.0.0.1".into(), sandbox.port().to_string()],
        "whsec_sdk_node_connect",
    );
}

#[test]
#[ignore = "needs Stripe's Python SDK (scripts/test.sh installs it)"]
fn stripe_python_sdk_reads_balances_and_payouts() {
    drive(
        "Stripe's Python SDK (balances and payouts)",
        python_with_stripe(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/sdk_balance.py"),
        |sandbox| vec![sandbox.base.clone()],
        "whsec_sdk_balance_test",
    );
}

#[test]
#[ignore = "needs Stripe's Node SDK (scripts/test.sh installs it)"]
fn stripe_node_sdk_reads_balances_and_payouts() {
    drive(
        "Stripe's Node SDK (balances and payouts)",
        "node",
        node_peer().join("sdk_balance.mjs"),
        |sandbox| vec!["127.0.0.1".into(), sandbox.port().to_string()],
        "whsec_sdk_node_balance",
    );
}
