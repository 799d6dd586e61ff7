//! The failure gate: every API request passes it before it is served, so an
//! injected [`Failure`](crate::Failure) reaches LIST, WATCH, discovery, the JWKS and
//! TokenReview alike (`HangList` only LIST, `GoneOnWatch` and `ForbidWatch`
//! only WATCH).

use axum::response::Response;
use tokio::sync::watch;

use crate::state::{Failure, Shared};
use crate::status::error_response;

/// What kind of API request is being gated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    List,
    Watch,
    /// Anything else: discovery, JWKS, TokenReview.
    Other,
}

/// Apply the failure mode: `Ok` with a receiver that changes when open
/// watches must close (marked seen before the mode was read, so a mode set
/// later still ends a watch opened now), or `Err` with the answer to send.
pub(crate) async fn pass(state: &Shared, kind: Kind) -> Result<watch::Receiver<u64>, Response> {
    let mut close = state.close_signal();
    loop {
        close.borrow_and_update();
        match state.failure() {
            Failure::Hang => {
                if state
                    .wait_unless_hanging(kind == Kind::List)
                    .await
                    .is_none()
                {
                    return Err(shutting_down());
                }
            }
            Failure::HangList if kind == Kind::List => {
                if state.wait_unless_hanging(true).await.is_none() {
                    return Err(shutting_down());
                }
            }
            Failure::GoneOnWatch if kind == Kind::Watch => return Err(crate::watch::gone()),
            Failure::ForbidWatch if kind == Kind::Watch => {
                return Err(error_response(
                    403,
                    "pods is forbidden: cannot watch resource \"pods\" (injected)",
                ));
            }
            Failure::Error(code) => return Err(error_response(code, "injected failure")),
            Failure::None
            | Failure::CloseWatches
            | Failure::HangList
            | Failure::GoneOnWatch
            | Failure::ForbidWatch => {
                return Ok(close);
            }
        }
    }
}

fn shutting_down() -> Response {
    error_response(503, "the server is shutting down")
}
