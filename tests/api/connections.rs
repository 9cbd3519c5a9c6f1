//! Slow, idle and too many clients: request heads and bodies have deadlines, idle kept-alive
//! connections close, connections and the memory of bodies being received are capped,
//! descriptor exhaustion is survived, and shutdown does not wait for clients that send nothing
//! (docs/contract.md §9 for stopping; the limits are the README's "Running in production").

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn host_of(address: &str) -> String {
    address.trim_start_matches("http://").to_string()
}

async fn connect(address: &str) -> TcpStream {
    TcpStream::connect(host_of(address)).await.unwrap()
}

/// Reads until the server closes the connection (or resets it): what it sent meanwhile.
/// `None` when the connection is still open after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Reads one response (its head, then `Content-Length` bytes). `None` when none is complete
/// within `within` or the connection closes first.
async fn read_response(stream: &mut TcpStream, within: Duration) -> Option<RawResponse> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let status = head.split(' ').nth(1)?.parse().ok()?;
            let mut response = RawResponse {
                status,
                head,
                body: Vec::new(),
            };
            let length: usize = response
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = got[end + 4..].to_vec();
            while body.len() < length {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => body.extend_from_slice(&buf[..n]),
                    _ => return None,
                }
            }
            response.body = body;
            return Some(response);
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: tmt\r\n\r\n";

/// A kept-alive connection that has been answered once.
async fn answered_connection(address: &str) -> TcpStream {
    let mut stream = connect(address).await;
    stream.write_all(HEALTHZ).await.unwrap();
    let response = read_response(&mut stream, PATIENCE)
        .await
        .expect("healthz answered");
    assert_eq!(response.status, 200);
    stream
}

/// An app with a 1 s header deadline and this idle timeout, and a kept-alive connection it
/// has answered once.
async fn kept_alive(idle_timeout: Duration) -> (TestApp, TcpStream) {
    let app = spawn_app_with(|c| {
        c.connections.header_timeout = Duration::from_secs(1);
        c.connections.idle_timeout = idle_timeout;
    })
    .await;
    let stream = answered_connection(&app.address).await;
    (app, stream)
}

fn webhook_head(content_length: usize) -> String {
    format!(
        "POST /stripe_webhook HTTP/1.1\r\nHost: tmt\r\nContent-Type: application/json\r\n\
         Stripe-Signature: t=1,v1=00\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_cut_off() {
    let app = spawn_app_with(|c| c.connections.header_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut slow = connect(&app.address).await;
    slow.write_all(b"POST /stripe_webhook HTTP/1.1\r\nHost: tmt\r\nContent-Le")
        .await
        .unwrap();
    // Others are served while it stalls.
    assert_eq!(app.get("/healthz").await.0, 200);
    let sent = until_closed(&mut slow, PATIENCE)
        .await
        .expect("the connection is closed");
    assert!(sent.is_empty(), "no response to half a head");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "closed by the header deadline, not before it"
    );
    assert_eq!(app.get("/healthz").await.0, 200);
}

/// What a stalled head can make the service hold is bounded too: 32 KiB.
#[tokio::test]
async fn a_head_over_32_kib_is_refused() {
    let app = spawn_app().await;
    let mut stream = connect(&app.address).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: tmt\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let response = read_response(&mut stream, PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(response.status, 431);
    // Just under the limit is fine.
    let mut stream = connect(&app.address).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: tmt\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(30 * 1024)
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let response = read_response(&mut stream, PATIENCE)
        .await
        .expect("an answer");
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_slow_head_on_a_kept_alive_connection_gets_the_header_deadline_not_the_idle_one() {
    let (_app, mut stream) = kept_alive(Duration::from_secs(600)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        until_closed(&mut stream, PATIENCE).await.is_some(),
        "a started head must be finished within HEADER_TIMEOUT_SECS"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let (_app, mut stream) = kept_alive(Duration::from_secs(3)).await;
    let idle_since = Instant::now();
    let sent = until_closed(&mut stream, PATIENCE)
        .await
        .expect("the idle connection is closed");
    assert!(sent.is_empty());
    // Well past the 1 s header deadline: idle time is measured by its own clock.
    assert!(
        idle_since.elapsed() >= Duration::from_secs(2),
        "closed after {:?}, before IDLE_TIMEOUT_SECS",
        idle_since.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_closes() {
    let app = spawn_app_with(|c| c.connections.body_timeout = Duration::from_secs(1)).await;
    for (path, extra) in [
        ("/stripe_webhook", "Stripe-Signature: t=1,v1=00\r\n"),
        ("/stripe_create_payment_intent", ""),
    ] {
        let mut stream = connect(&app.address).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: tmt\r\nContent-Type: application/json\r\n{extra}\
             Content-Length: 1000\r\n\r\n{{\"data\": {{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let response = read_response(&mut stream, PATIENCE)
            .await
            .expect("an answer");
        assert_eq!(response.status, 408, "{path}");
        let body = response.json();
        assert_eq!(body["status"], 408);
        assert_eq!(body["code"], "request_timeout");
        assert_eq!(body["error"], "La solicitud tardó demasiado");
        assert_eq!(response.header("connection").as_deref(), Some("close"));
        assert_eq!(
            response.header("access-control-allow-origin").as_deref(),
            Some("*"),
            "{path}: refusals carry CORS like every answer"
        );
        assert!(
            until_closed(&mut stream, PATIENCE).await.is_some(),
            "{path}: the connection is closed after the 408"
        );
    }
    assert!(app.stripe_requests().await.is_empty());
}

/// The deadline is for the whole body: a client that keeps sending a byte now and then does
/// not stretch it.
#[tokio::test]
async fn a_trickled_body_is_cut_off_at_the_deadline() {
    let app = spawn_app_with(|c| c.connections.body_timeout = Duration::from_secs(1)).await;
    let mut stream = connect(&app.address).await;
    stream
        .write_all(webhook_head(1000).as_bytes())
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..1000 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            // The slow client's pace: a byte every 100 ms.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(read.is_ok(), "the connection is closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
}

#[tokio::test]
async fn bodies_past_the_memory_budget_get_503_until_room_is_made() {
    const BUDGET: usize = 100_000;
    const LENGTH: usize = 40_000;
    let app = spawn_app_with(|c| {
        c.connections.max_inflight_body_bytes = BUDGET;
        c.connections.body_timeout = Duration::from_secs(600);
    })
    .await;
    // Two bodies that stall hold 80 000 of the 100 000 bytes.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&app.address).await;
        s.write_all(webhook_head(LENGTH).as_bytes()).await.unwrap();
        s.write_all(&[b' '; 1000]).await.unwrap();
        stalled.push(s);
    }
    let body = vec![b' '; LENGTH];
    let post = |body: Vec<u8>| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/stripe_webhook", app.address))
                .header("content-type", "application/json")
                .header("stripe-signature", "t=1,v1=00")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let refused = eventually("a body that does not fit is refused", PATIENCE, || {
        let body = body.clone();
        async move {
            let r = post(body).await;
            (r.status() == 503).then_some(r)
        }
    })
    .await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let (_, _, refusal) = read(refused).await;
    assert_eq!(refusal["status"], 503);
    assert_eq!(refusal["code"], "overloaded");
    assert_eq!(
        refusal["error"],
        "Servicio sobrecargado; intente de nuevo en unos segundos"
    );

    // A body without a length is counted as it arrives, and refused when it no longer fits.
    let mut chunked = connect(&app.address).await;
    chunked
        .write_all(
            b"POST /stripe_webhook HTTP/1.1\r\nHost: tmt\r\nContent-Type: application/json\r\n\
              Stripe-Signature: t=1,v1=00\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 8000, " ".repeat(8000));
    for _ in 0..4 {
        if chunked.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let response = read_response(&mut chunked, PATIENCE)
        .await
        .expect("an answer to the chunked body");
    assert_eq!(response.status, 503);
    assert_eq!(response.json()["code"], "overloaded");

    // Once the stalled bodies go away, their room is given back.
    drop(stalled);
    eventually("bodies are accepted again", PATIENCE, || {
        let body = body.clone();
        async move {
            let r = post(body).await;
            (r.status() != 503).then_some(())
        }
    })
    .await;
    // Read in full and judged on its signature.
    let (status, _, answer) = read(post(body.clone()).await).await;
    assert_eq!(status, 400);
    assert_eq!(answer["code"], "signature_mismatch", "{answer}");
}

#[tokio::test]
async fn connections_past_max_connections_wait_for_a_free_slot() {
    let app = spawn_app_with(|c| c.connections.max_connections = 2).await;
    let first = answered_connection(&app.address).await;
    let _second = answered_connection(&app.address).await;
    let mut third = connect(&app.address).await;
    third.write_all(HEALTHZ).await.unwrap();
    assert!(
        read_response(&mut third, Duration::from_millis(500))
            .await
            .is_none(),
        "a third connection is not served while two are open"
    );
    drop(first);
    let response = read_response(&mut third, PATIENCE)
        .await
        .expect("served once a slot is free");
    assert_eq!(response.status, 200);
}

/// 500 clients each send most of a 1 MiB webhook and stall: the bodies held stay within the
/// default 64 MiB budget, the rest are refused, and the service keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_webhook_bodies_do_not_grow_memory_without_bound() {
    const CLIENTS: usize = 500;
    const LENGTH: usize = 1_000_000;
    const SENT: usize = 900 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::keyed(&sqlite_url(dir.path()), "http://127.0.0.1:9", &[]).await;
    let pid = server.child.id();
    let body: Arc<Vec<u8>> = Arc::new(vec![b' '; SENT]);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (address, body) = (server.address.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut stream = connect(&address).await;
            let _ = stream.write_all(webhook_head(LENGTH).as_bytes()).await;
            let _ = stream.write_all(&body).await;
            // Then nothing more: the answer is a refusal at once or a timeout later.
            read_response(&mut stream, Duration::from_secs(120))
                .await
                .map(|r| r.status)
        }));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut checks = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        let status = http
            .get(format!("{}/healthz", server.address))
            .send()
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(status.ok(), Some(200), "healthz answers while they stall");
        checks += 1;
        // A probe every 200 ms for as long as the clients stall.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checks > 0);
    let mut statuses = Vec::new();
    for c in clients {
        statuses.push(c.await.unwrap());
    }
    let peak_kib = vm_kib(pid, "VmHWM");
    assert!(
        peak_kib < 150 * 1024,
        "peak resident memory {} MiB",
        peak_kib / 1024
    );
    assert!(
        statuses.contains(&Some(503)),
        "some were refused: {statuses:?}"
    );
    assert!(
        statuses.contains(&Some(408)),
        "some were held, then timed out"
    );
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The binary with at most `nofile` open descriptors, Stripe unreachable, `envs`, its log in
/// `log`; and the connection
/// that found it ready, kept open so that no descriptor is freed behind the test's back.
async fn start_with_fd_limit(
    db: &str,
    nofile: u32,
    envs: &[(&str, &str)],
    log: &Path,
) -> (Server, TcpStream) {
    let port = free_port();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\""))
        .arg(BIN)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .env("PORT", port.to_string())
        .env("BIND", "127.0.0.1")
        .envs(keyed_env("http://127.0.0.1:9"))
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
        .spawn()
        .unwrap();
    let server = Server {
        child,
        address: format!("http://127.0.0.1:{port}"),
    };
    let mut first = listening(&server.address).await;
    first.write_all(HEALTHZ).await.unwrap();
    let r = read_response(&mut first, PATIENCE)
        .await
        .expect("it answers");
    assert_eq!(r.status, 200);
    (server, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_service_logs_it_keeps_serving_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let (server, first) = start_with_fd_limit(
        &sqlite_url(dir.path()),
        64,
        &[
            // Only the clients end connections in this test.
            ("HEADER_TIMEOUT_SECS", "600"),
            ("IDLE_TIMEOUT_SECS", "600"),
        ],
        &log,
    )
    .await;
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut open = vec![first];
    // Open kept-alive connections until one is left unanswered at the descriptor limit.
    let first_unanswered = loop {
        assert!(open.len() < 200, "the descriptor limit was never reached");
        let mut stream = connect(&server.address).await;
        stream.write_all(HEALTHZ).await.unwrap();
        let answer = tokio::select! {
            r = read_response(&mut stream, PATIENCE) => Some(r.expect("an answer").status),
            () = eventually("the exhaustion logged", PATIENCE, || {
                let text = logged();
                async move { text.contains("out of file descriptors").then_some(()) }
            }) => None,
        };
        match answer {
            Some(status) => {
                assert_eq!(status, 200);
                open.push(stream);
            }
            None => break stream,
        }
    };
    // A few more wait behind it, so that a descriptor the service frees for a moment (its
    // database pool opening a connection, say) lets in one of those, not the last.
    let mut queued = vec![first_unanswered];
    for _ in 0..4 {
        let mut stream = connect(&server.address).await;
        stream.write_all(HEALTHZ).await.unwrap();
        queued.push(stream);
    }
    // The connections it has are still served.
    for stream in open.iter_mut().take(3) {
        stream.write_all(HEALTHZ).await.unwrap();
        let r = read_response(stream, PATIENCE).await.expect("still served");
        assert_eq!(r.status, 200);
    }
    let last = queued.last_mut().unwrap();
    assert!(
        read_response(last, Duration::from_millis(300))
            .await
            .is_none(),
        "a new client is not served while descriptors are exhausted ({} open)",
        open.len(),
    );
    // Some clients leave: the waiting ones are served without anything else happening.
    open.truncate(open.len() - 10);
    for stream in &mut queued {
        let r = read_response(stream, PATIENCE)
            .await
            .expect("served once descriptors are free");
        assert_eq!(r.status, 200);
    }
    eventually("the recovery is logged", PATIENCE, || {
        let text = logged();
        async move { text.contains("accepting connections again").then_some(()) }
    })
    .await;
    let text = logged();
    assert!(
        text.matches("out of file descriptors").count() <= 2,
        "the exhaustion is logged, not once per failed accept:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_clients_that_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::keyed(
        &sqlite_url(dir.path()),
        "http://127.0.0.1:9",
        &[
            ("SHUTDOWN_TIMEOUT_SECS", "30"),
            // Neither timeout would end these clients before the exit asserted below.
            ("HEADER_TIMEOUT_SECS", "600"),
            ("IDLE_TIMEOUT_SECS", "600"),
        ],
    )
    .await;
    let mut half_head = connect(&server.address).await;
    half_head
        .write_all(b"POST /stripe_webhook HTTP/1.1\r\nHost: tmt\r\n")
        .await
        .unwrap();
    // Accepted after the first, so its answer means both connections are open.
    let mut idle = answered_connection(&server.address).await;
    server.sigterm();
    // Well under the 30 s shutdown deadline, which is what a stalled client used to cost.
    assert_eq!(
        exited(&mut server.child, Duration::from_secs(10)).await,
        Some(0)
    );
    assert!(until_closed(&mut half_head, PATIENCE).await.is_some());
    assert!(until_closed(&mut idle, PATIENCE).await.is_some());
}
