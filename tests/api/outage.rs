//! The database goes away under light load and comes back: requests that need it fail fast with
//! 503 (webhooks with 500, so Stripe retries) instead of hanging, and the service recovers by
//! itself. Runs a private PostgreSQL cluster (initdb in a temporary folder, its own port) so
//! that stopping it disturbs nothing else; it needs PostgreSQL's server binaries, so it is
//! `#[ignore]`d and runs when asked (`scripts/test.sh` does).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use wiremock::MockServer;

use crate::helpers::*;

struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

fn pg_bin() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|v| v.join("bin"))
        .filter(|b| b.join("initdb").exists())
}

/// Runs a PostgreSQL tool as the `postgres` user (the server refuses to run as root).
fn as_postgres(bin: &Path, tool: &str, args: &[&str]) -> bool {
    let mut c = if nix_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    c.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl Cluster {
    /// A new cluster, started; fails the test, saying why, where it cannot make one.
    fn create() -> Cluster {
        let bin = pg_bin()
            .expect("needs PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if nix_is_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                chown.success(),
                "needs a postgres user to run the server as"
            );
        }
        let data_text = data.to_str().unwrap().to_string();
        assert!(
            as_postgres(
                &bin,
                "initdb",
                &["-D", &data_text, "-A", "trust", "-U", "postgres"],
            ),
            "initdb failed"
        );
        let cluster = Cluster {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        assert!(cluster.start(), "the private cluster does not start");
        cluster
    }

    fn start(&self) -> bool {
        let socket_dir = self.data.parent().unwrap().to_str().unwrap().to_string();
        let options = format!(
            "-p {} -k {socket_dir} -c listen_addresses=127.0.0.1",
            self.port
        );
        let log = self.data.parent().unwrap().join("server.log");
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        )
    }

    fn stop(&self) -> bool {
        as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql"]
async fn postgres_stopped_and_restarted_under_load() {
    let cluster = Cluster::create();
    let stripe = MockServer::start().await;
    stub_reads(
        &stripe,
        payment_intent("pi_outage1", 5000, "usd", "processing"),
    )
    .await;
    let uri = stripe.uri();
    let server = Server::keyed(
        &cluster.url(),
        &uri,
        &[("DATABASE_ACQUIRE_TIMEOUT_SECS", "2")],
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let get = || async {
        let r = http
            .post(format!("{}/stripe_get_payment_intent", server.address))
            .header("content-type", "application/json")
            .body(json!({"data": {"payment_intent_id": "pi_outage1"}}).to_string())
            .send()
            .await
            .expect("an answer, not a hang");
        read(r).await
    };
    let hook = |n: u32| {
        let body = event(
            &format!("evt_outage_{n}"),
            "payment_intent.processing",
            payment_intent("pi_outage1", 5000, "usd", "processing"),
            now(),
        )
        .to_string();
        let header = tmt_payments::stripe::signature::sign(body.as_bytes(), WEBHOOK_SECRET, now());
        http.post(format!("{}/stripe_webhook", server.address))
            .header("Stripe-Signature", header)
            .body(body)
            .send()
    };

    let ready = || async {
        let r = http
            .get(format!("{}/readyz", server.address))
            .send()
            .await
            .expect("an answer");
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    // Up: light load succeeds.
    for _ in 0..5 {
        assert_eq!(get().await.0, 200);
    }
    assert_eq!(ready().await.0, 200);
    assert_eq!(hook(1).await.unwrap().status(), 200);

    // Down: every request that needs the database answers, with 503 (500 for the webhook).
    assert!(cluster.stop(), "cluster stops");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, _, body) = get().await;
        statuses.push(status);
        if status == 503 {
            assert_eq!(body["code"], "database_unavailable");
            assert_eq!(body["error"], "Servicio no disponible temporalmente");
        }
    }
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not_ready") && body.contains("database unreachable"),
        "{body}"
    );
    assert!(
        !body.contains("postgres://"),
        "no connection details in the answer"
    );
    let r = hook(2).await.unwrap();
    assert_eq!(r.status(), 500, "Stripe retries the event later");

    // Back: the service recovers by itself, without a restart.
    assert!(cluster.start(), "cluster restarts");
    eventually("the service recovers", Duration::from_secs(30), || async {
        get().await.0 == 200
    })
    .await;
    assert_eq!(
        hook(2).await.unwrap().status(),
        200,
        "the retried event lands"
    );
    assert_eq!(ready().await.0, 200);
    let ledger = open_ledger(&cluster.url()).await;
    assert_eq!(
        ledger_events(&ledger, |e| [&e.id]).await,
        [["evt_outage_2"], ["evt_outage_1"]]
    );
}
