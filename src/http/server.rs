//! The accept loop and the life of one connection (docs/contract.md §13, "Slow and idle clients"): how long
//! a client may take over a request head or sit idle, how many connections are open at once,
//! what happens at the file-descriptor limit, and how connections end on shutdown.
//!
//! hyper's HTTP/1 connection does the protocol work and enforces the head deadline
//! (`header_read_timeout`); this module feeds it the right clock, caps the connections with a
//! semaphore and drives shutdown per connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::{Service, ServiceExt};

/// The connection settings of `serve` (docs/contract.md §13), with those of the request bodies that
/// [`super::bodies::BodyLimits`] enforces on the way in.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request head must be complete this long after the connection opened, or after its
    /// first byte on a kept-alive connection.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request under way is closed after this long.
    pub idle_timeout: Duration,
    /// Connections open at once; the rest wait in the kernel's listen queue.
    pub max_connections: usize,
    /// A request body must be whole this long after its head; then 408.
    pub body_timeout: Duration,
    /// Bytes that request bodies being received may hold together; past it, requests with a
    /// body get 503 `overloaded`.
    pub max_inflight_body_bytes: usize,
    /// On shutdown, how long requests in flight may take to finish.
    pub shutdown_timeout: Duration,
}

/// What the connections are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish the request under way, then close; close at once when there is none.
    Draining,
    /// The shutdown deadline passed: drop everything still open.
    Abort,
}

/// The most a request head (request line and headers) may take; a longer one is answered 431
/// by hyper. It is also what a client stalling mid-head can make this process hold: without
/// it, hyper buffers up to about 400 KiB per connection, and a thousand stalled heads held
/// 300 MB.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// While accepting fails for lack of descriptors (or kernel memory), how long to wait before
/// trying again: short, so that a closed connection is followed by an accept almost at once.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);
/// At most one log line per this long while accepting keeps failing.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves. Then it stops accepting (the
/// listener is closed, so a load balancer sees refused connections and goes elsewhere), closes
/// at once every connection without a request under way, lets requests in flight finish for
/// up to `limits.shutdown_timeout`, and drops whatever is still running at that deadline: its
/// client gets no answer, in particular no 200 for something not on disk.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (phase_tx, phase_rx) = watch::channel(Phase::Serving);
    let mut accept_failures = AcceptFailures::default();
    let mut at_capacity_logged: Option<Instant> = None;
    let mut shutdown = pin!(shutdown);
    loop {
        // Waiting for a slot before accepting leaves the surplus in the kernel's queue, where
        // it costs this process nothing.
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if at_capacity_logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
                    at_capacity_logged = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "MAX_CONNECTIONS connections are open: new ones wait in the listen queue"
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => {
                        slot.expect("the semaphore is never closed")
                    }
                }
            }
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                drop(slot);
                let open = limits.max_connections - slots.available_permits();
                if let Some(wait) = accept_failures.failed(&e, open) {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                continue;
            }
        };
        accept_failures.accepted();
        let service = connection_service(&mut make_service, peer).await;
        let phase = phase_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, service, limits, phase).await;
            drop(slot);
        });
    }
    drop(listener);
    drop(phase_rx);
    let open = limits.max_connections - slots.available_permits();
    tracing::info!(open, "stopped accepting; closing idle connections");
    let _ = phase_tx.send(Phase::Draining);
    // Every connection task holds a receiver: `closed` resolves when the last one has ended.
    if tokio::time::timeout(limits.shutdown_timeout, phase_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight after SHUTDOWN_TIMEOUT_SECS ({} s): dropped",
            limits.shutdown_timeout.as_secs()
        );
        let _ = phase_tx.send(Phase::Abort);
        phase_tx.closed().await;
    }
}

/// What makes each connection's service from the router.
type MakeService = IntoMakeServiceWithConnectInfo<Router, SocketAddr>;

/// The router as one connection sees it: with the peer's address as `ConnectInfo`, as
/// `into_make_service_with_connect_info` gives it under `axum::serve`.
type ConnectionService = <MakeService as Service<SocketAddr>>::Response;

/// The service for a connection from `peer`.
async fn connection_service(make_service: &mut MakeService, peer: SocketAddr) -> ConnectionService {
    let ready = ServiceExt::<SocketAddr>::ready(make_service)
        .await
        .unwrap_or_else(|never| match never {});
    ready
        .call(peer)
        .await
        .unwrap_or_else(|never| match never {})
}

async fn serve_connection(
    stream: TcpStream,
    service: ConnectionService,
    limits: ConnectionLimits,
    mut phase: watch::Receiver<Phase>,
) {
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Counted {
        stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        // hyper calls this once a head is complete.
        requests.request_started.store(true, Ordering::Relaxed);
        service.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(HeadTimer {
            activity: activity.clone(),
            limits,
        })
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    let mut connection = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    // Timeouts and clients that go away are routine: not worth more than debug.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Abort };
                match now {
                    Phase::Serving => {}
                    Phase::Draining if !draining => {
                        draining = true;
                        // hyper closes an idle connection at once, but would wait for a head
                        // that has started to arrive; nothing has been asked on this
                        // connection yet, so nothing is lost by closing it now.
                        if !activity.request_started.load(Ordering::Relaxed) {
                            return;
                        }
                        connection.as_mut().graceful_shutdown();
                    }
                    Phase::Draining => {}
                    Phase::Abort => return,
                }
            }
        }
    }
}

/// What one connection has done so far, shared by its I/O, its service and its head timer.
#[derive(Default)]
struct Activity {
    /// Bytes received: the head timer watches it for the first byte of the next request.
    bytes_read: AtomicU64,
    /// Some request head has been complete on this connection.
    request_started: AtomicBool,
}

/// The client's stream, counting what arrives.
struct Counted {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity
                .bytes_read
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The clock of hyper's `header_read_timeout` for one connection.
///
/// hyper (1.12) starts that timer whenever it begins waiting for a request head: when the
/// connection opens, and again as soon as a response has gone out on a kept-alive connection.
/// So on its own it would close idle kept-alive connections after `HEADER_TIMEOUT_SECS`, and
/// load balancers that keep connections for longer would keep meeting closed ones. This timer
/// keeps hyper's deadline for the first head, and for the later ones gives the client
/// `IDLE_TIMEOUT_SECS` to start the next request, then `HEADER_TIMEOUT_SECS` from its first
/// byte to finish the head. hyper uses the connection's timer for nothing else.
#[derive(Clone)]
struct HeadTimer {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
}

impl Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        if !self.activity.request_started.load(Ordering::Relaxed) {
            return TokioTimer::new().sleep_until(deadline);
        }
        let now = tokio::time::Instant::now();
        Box::pin(NextHead {
            activity: self.activity.clone(),
            bytes_at_start: self.activity.bytes_read.load(Ordering::Relaxed),
            head_started: false,
            header_timeout: self.limits.header_timeout,
            sleep: Box::pin(tokio::time::sleep_until(now + self.limits.idle_timeout)),
        })
    }
}

/// Waiting for the next request on a kept-alive connection: idle until its first byte, then
/// the head deadline.
struct NextHead {
    activity: Arc<Activity>,
    bytes_at_start: u64,
    head_started: bool,
    header_timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for NextHead {
    type Output = ();

    // hyper polls this right after every read that leaves the head incomplete, so the first
    // byte is noticed as it arrives. Bytes the client sent before the previous response
    // finished (pipelining) are not noticed: such a head gets the idle time, still bounded.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.head_started
            && self.activity.bytes_read.load(Ordering::Relaxed) != self.bytes_at_start
        {
            self.head_started = true;
            let deadline = tokio::time::Instant::now() + self.header_timeout;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl Sleep for NextHead {}

/// Accept errors: the ones that mean the process (or the system) is out of descriptors or
/// kernel memory are logged, at most once per `ACCEPT_LOG_EVERY`, and retried shortly; the
/// connections already open keep being served meanwhile.
#[derive(Default)]
struct AcceptFailures {
    since: Option<Instant>,
    count: u64,
    logged: Option<Instant>,
}

impl AcceptFailures {
    /// How long to wait before accepting again, if at all.
    fn failed(&mut self, e: &io::Error, open: usize) -> Option<Duration> {
        // A client that gave up between the handshake and the accept: nothing to report.
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            return None;
        }
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        self.count += 1;
        if self
            .logged
            .is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_EVERY)
        {
            self.logged = Some(now);
            let failing_for_secs = now.duration_since(since).as_secs();
            match e.raw_os_error() {
                Some(libc::EMFILE) => tracing::warn!(
                    error = %e,
                    open_connections = open,
                    failed_accepts = self.count,
                    failing_for_secs,
                    "out of file descriptors (EMFILE): new connections wait in the listen queue \
                     while the open ones are served; raise the limit (ulimit -n, LimitNOFILE) \
                     above MAX_CONNECTIONS or lower MAX_CONNECTIONS"
                ),
                Some(libc::ENFILE) => tracing::warn!(
                    error = %e,
                    open_connections = open,
                    failed_accepts = self.count,
                    failing_for_secs,
                    "the system is out of file descriptors (ENFILE): new connections wait in \
                     the listen queue while the open ones are served"
                ),
                _ => tracing::warn!(
                    error = %e,
                    open_connections = open,
                    failed_accepts = self.count,
                    failing_for_secs,
                    "cannot accept connections; retrying"
                ),
            }
        }
        Some(ACCEPT_RETRY)
    }

    fn accepted(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(
                failed_accepts = self.count,
                after_secs = since.elapsed().as_secs_f64(),
                "accepting connections again"
            );
            self.count = 0;
            self.logged = None;
        }
    }
}
