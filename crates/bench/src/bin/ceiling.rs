//! The ceiling server of the ingest benchmark: what serving the report
//! route costs on this machine when nothing is done with the report.
//!
//! Same shape as `netchecker-server` (a default multi-thread tokio runtime,
//! an axum router served connection by connection by hyper's HTTP/1.1
//! server with a header-read timeout and keep-alive), but `POST
//! /api/v1/agents/{name}` only reads the whole body and answers 200:
//! no JSON parsing, no cache, no metrics. The server's throughput divided by
//! this one's, measured in the same run with the same load, is a ratio that
//! holds on a noisy shared machine where absolute figures do not.
//!
//! `netchecker-bench-ceiling --endpoint 127.0.0.1:PORT`; prints nothing,
//! serves until killed.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::Parser;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

async fn post_agent(Path(name): Path<String>, body: Bytes) -> StatusCode {
    // Keep the compiler from dropping the reads it is there to measure.
    std::hint::black_box((name, body));
    StatusCode::OK
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// The ceiling server of `make bench`'s ingest benchmark.
#[derive(Parser)]
#[command(name = "netchecker-bench-ceiling")]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    endpoint: String,
}

fn main() -> anyhow::Result<()> {
    let endpoint = Args::parse().endpoint;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&endpoint).await?;
        let router = Router::new()
            .route("/api/v1/agents/{name}", post(post_agent))
            .route("/healthz", get(healthz));
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let service = TowerToHyperService::new(router.clone());
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}
