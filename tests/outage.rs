//! The database goes away under light load and comes back: requests that need it fail fast with
//! 503 (webhooks with 500, so Stripe retries) instead of hanging, and the service recovers by
//! itself. Runs a private PostgreSQL cluster (initdb in a temporary folder, its own port) so
//! that stopping it disturbs nothing else; mandatory under CI=true.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::*;
use common::*;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

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
    fn create() -> Option<Cluster> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir().ok()?;
        let data = dir.path().join("data");
        if nix_is_root() {
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .ok()?;
        }
        let data_text = data.to_str()?.to_string();
        if !as_postgres(
            &bin,
            "initdb",
            &["-D", &data_text, "-A", "trust", "-U", "postgres"],
        ) {
            return None;
        }
        let cluster = Cluster {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        cluster.start().then_some(cluster)
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
async fn postgres_stopped_and_restarted_under_load() {
    let Some(cluster) = Cluster::create() else {
        let reason = "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("peer required under CI=true: {reason}");
        }
        eprintln!("SKIPPED: {reason}");
        return;
    };
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_outage1",
            5000,
            "usd",
            "processing",
        )))
        .mount(&stripe)
        .await;
    let uri = stripe.uri();
    let server = Server::start(
        &cluster.url(),
        &[
            ("STRIPE_SECRET_KEY", SECRET_KEY),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("STRIPE_API_BASE", &uri),
            ("DATABASE_ACQUIRE_TIMEOUT_SECS", "2"),
        ],
    );
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
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if get().await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the service never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        hook(2).await.unwrap().status(),
        200,
        "the retried event lands"
    );
    assert_eq!(ready().await.0, 200);
    let ledger = open_ledger(&cluster.url()).await;
    let ids: Vec<_> = ledger
        .list_events(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, ["evt_outage_2", "evt_outage_1"]);
}
