//! Request bodies while they arrive (docs/contract.md §13): each must be complete within
//! `BODY_TIMEOUT_SECS` of its head, and together they hold at most `MAX_INFLIGHT_BODY_BYTES`.
//! Without that budget, a thousand clients each sending most of a 1 MiB webhook and then
//! stalling held a gigabyte.
//!
//! The budget is a semaphore of bytes. A body that announces its length reserves it up front,
//! so that a request that cannot fit is refused before anything of it is read; a body without
//! a length (chunked) reserves each chunk as it comes. The reservation is returned when the
//! body ends or is dropped.
//!
//! tower-http's `RequestBodyTimeout` restarts its clock at every chunk, so a client trickling
//! a byte every few seconds would never be cut off; the deadline here is for the whole body.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::WEBHOOK_BODY_LIMIT;

/// What an overloaded answer suggests as `Retry-After`: stalled bodies give their share back
/// within `BODY_TIMEOUT_SECS` at worst, usually far sooner.
pub const OVERLOADED_RETRY_AFTER_SECS: u64 = 5;

/// The most that one announced length reserves up front: no route reads more than this
/// before refusing a body as too large. A body that goes past it reserves the rest chunk by
/// chunk, like one without a length.
const MAX_UP_FRONT: u64 = WEBHOOK_BODY_LIMIT as u64;

/// The shared budget and deadline; cheap to clone.
#[derive(Clone)]
pub struct BodyLimits {
    budget: Arc<Semaphore>,
    timeout: Duration,
}

impl BodyLimits {
    pub fn new(max_inflight_bytes: usize, timeout: Duration) -> Self {
        BodyLimits {
            budget: Arc::new(Semaphore::new(
                max_inflight_bytes.min(Semaphore::MAX_PERMITS),
            )),
            timeout,
        }
    }

    fn reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let bytes = u32::try_from(bytes).ok()?;
        self.budget.clone().try_acquire_many_owned(bytes).ok()
    }
}

/// Why a body was cut off: decides the answer instead of whatever the handler made of a body
/// that failed under it.
const NOT_REFUSED: u8 = 0;
const TIMED_OUT: u8 = 1;
const OVER_BUDGET: u8 = 2;

/// Middleware over every route that reads a body.
pub async fn limit_bodies(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let up_front = body.size_hint().exact().map(|n| n.min(MAX_UP_FRONT));
    let reserved = match up_front {
        Some(bytes) => match limits.reserve(bytes) {
            Some(permit) => Some(permit),
            None => return overloaded(),
        },
        None => None,
    };
    let refusal = Arc::new(AtomicU8::new(NOT_REFUSED));
    let body = LimitedBody {
        inner: body,
        limits: limits.clone(),
        prepaid: up_front.unwrap_or(0),
        reserved,
        deadline: Box::pin(tokio::time::sleep(limits.timeout)),
        refusal: refusal.clone(),
    };
    let response = next.run(Request::from_parts(parts, Body::new(body))).await;
    match refusal.load(Ordering::Relaxed) {
        TIMED_OUT => ApiError::RequestTimeout.into_response(),
        OVER_BUDGET => overloaded(),
        _ => response,
    }
}

fn overloaded() -> Response {
    ApiError::Overloaded {
        retry_after_secs: OVERLOADED_RETRY_AFTER_SECS,
    }
    .into_response()
}

struct LimitedBody {
    inner: Body,
    limits: BodyLimits,
    /// Bytes still covered by the up-front reservation.
    prepaid: u64,
    /// Everything this body holds of the budget; dropped (given back) with it.
    reserved: Option<OwnedSemaphorePermit>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    refusal: Arc<AtomicU8>,
}

#[derive(Debug, thiserror::Error)]
enum Cut {
    #[error("the request body did not arrive within BODY_TIMEOUT_SECS")]
    TimedOut,
    #[error("MAX_INFLIGHT_BODY_BYTES reached while the request body arrived")]
    OverBudget,
}

impl LimitedBody {
    fn cut(&mut self, why: Cut) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        self.refusal.store(
            match why {
                Cut::TimedOut => TIMED_OUT,
                Cut::OverBudget => OVER_BUDGET,
            },
            Ordering::Relaxed,
        );
        self.reserved = None;
        Poll::Ready(Some(Err(why.into())))
    }

    /// Covers `len` more bytes: from the up-front reservation, else from the budget.
    fn account(&mut self, len: u64) -> bool {
        if len <= self.prepaid {
            self.prepaid -= len;
            return true;
        }
        let more = len - self.prepaid;
        self.prepaid = 0;
        match self.limits.reserve(more) {
            Some(permit) => {
                match &mut self.reserved {
                    Some(held) => held.merge(permit),
                    None => self.reserved = Some(permit),
                }
                true
            }
            None => false,
        }
    }
}

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if polled.is_pending() {
            ready!(this.deadline.as_mut().poll(cx));
            return this.cut(Cut::TimedOut);
        }
        match ready!(polled) {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if !this.account(len) {
                    return this.cut(Cut::OverBudget);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => {
                this.reserved = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
