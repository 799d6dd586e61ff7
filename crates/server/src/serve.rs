//! Serving HTTP/1.1 with the bounds an exposed server needs.
//!
//! The accept loop is spelled out (rather than `axum::serve`) for the knobs
//! it gives: a header-read timeout against slow or stalled clients, a write
//! timeout against clients that ask and never read, a cap on connections
//! that sheds load with `503` and `Retry-After` instead of growing, and a
//! drain that waits for in-flight requests but not forever.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use prometheus::{IntCounter, IntGauge};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

/// The bounds of [`serve`].
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest wait for a request's headers.
    pub header_timeout: Duration,
    /// Longest an answer may wait for the client to take more of it.
    pub write_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
}

/// Series that show the connections: open now, and shed at the cap.
#[derive(Clone)]
pub struct ConnectionSeries {
    pub open: IntGauge,
    pub shed: IntCounter,
}

/// The answer to a connection beyond the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 61\r\nConnection: close\r\n\r\nserver busy: too many connections (--max-connections); retry\n";

/// Serve `router` on `listener` until `shutdown` is cancelled; then stop
/// accepting, let in-flight requests finish for at most `drain`, and return.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    series: ConnectionSeries,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Typically EMFILE: back off briefly rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        if open.load(Ordering::Acquire) >= limits.max_connections {
            series.shed.inc();
            tokio::spawn(shed(stream));
            continue;
        }
        let held = Held::new(&open, &series.open);
        let io = TokioIo::new(WriteTimeout::new(stream, limits.write_timeout));
        // Handlers learn the peer's address (a report's IP family).
        let routes = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(routes.clone(), req)
            },
        ));
        let conn = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _held = held;
            if let Err(error) = conn.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("stopped accepting; draining in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(drain) => tracing::warn!(?drain, "drain timed out; closing remaining connections"),
    }
}

/// A connection counted as open until dropped.
struct Held {
    open: Arc<AtomicUsize>,
    gauge: IntGauge,
}

impl Held {
    fn new(open: &Arc<AtomicUsize>, gauge: &IntGauge) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        gauge.inc();
        Self {
            open: open.clone(),
            gauge: gauge.clone(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

/// Answer 503 on a connection beyond the cap and close it, within a second
/// whatever the client does. What the client sent is read and dropped
/// first, so the close does not reset the connection before it reads the
/// answer.
async fn shed(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.read(&mut sink)).await;
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// A stream whose writes fail with `TimedOut` once one has waited `limit`
/// for the client to take more (the client stopped reading).
struct WriteTimeout<S> {
    inner: S,
    limit: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            waiting: None,
        }
    }

    /// Called when a write is pending: fail once it has pended `limit`.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let sleep = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read the answer within the write timeout",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            done => {
                self.waiting = None;
                done
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            done => {
                self.waiting = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            done => {
                self.waiting = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_cannot_proceed_fails_after_the_limit() {
        // A pipe whose reader never reads: writes pend once it is full.
        let (client, server) = tokio::io::duplex(64);
        let mut w = WriteTimeout::new(server, Duration::from_secs(10));
        let started = tokio::time::Instant::now();
        let err = w.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (mut client, server) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut got = 0;
            let mut buf = [0u8; 64];
            while got < 4096 {
                tokio::time::sleep(Duration::from_secs(5)).await;
                got += client.read(&mut buf).await.unwrap();
            }
            got
        });
        let mut w = WriteTimeout::new(server, Duration::from_secs(10));
        w.write_all(&[0u8; 4096]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 4096, "each wait was under the limit");
    }
}
