//! The authenticated ingest benchmark: the server watches the fake
//! Kubernetes API (in this process) holding `--agents` agent pods, with
//! `--report-auth enforce`; every agent sends its own pod-bound RS256
//! ServiceAccount token, minted by the fake's issuer. Measured: the cost
//! of the first report of each agent (its token verified), then ingest
//! against the ceiling as in the plain benchmark (tokens remembered), and
//! the requests the server made to the API for it. Beside it, what the
//! other way to verify, TokenReview, costs per token on the same fake API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use netchecker_fake_apiserver::{FakeApiServer, PodBuilder, TokenRequest};

use crate::figures::ms;
use crate::http::{Mode, Reports};
use crate::ingest::{Target, fill, ratio_line, round_rows};
use crate::procs::start_http;
use crate::{Args, reports};

pub struct AuthFigures {
    pub ratio_keep_alive: f64,
}

const NS: &str = "netchecker";

pub async fn authenticated(a: &Args, plain: &Reports) -> anyhow::Result<AuthFigures> {
    let fake = FakeApiServer::start().await;
    for i in 0..a.agents {
        fake.add_pod(PodBuilder::new(
            NS,
            &reports::pod_name(i),
            "netchecker-agent",
            &reports::node_name(i),
        ));
    }
    eprintln!("== auth: minting {} pod-bound tokens", a.agents);
    let t = Instant::now();
    let mut tokens = Vec::with_capacity(a.agents);
    for i in 0..a.agents {
        let minted = fake
            .mint_token(&TokenRequest::for_pod(NS, &reports::pod_name(i)))
            .map_err(|e| anyhow::anyhow!("minting: {e:?}"))?;
        tokens.push(http::HeaderValue::from_str(&format!(
            "Bearer {}",
            minted.token
        ))?);
    }
    let token_len = tokens[0].len() - "Bearer ".len();
    eprintln!("   minted in {:.1} s", t.elapsed().as_secs_f64());
    let reports = Arc::new(Reports {
        paths: plain.paths.clone(),
        bodies: plain.bodies.clone(),
        tokens,
        mesh: false,
    });
    let dir = std::env::temp_dir().join(format!("netchecker-bench-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig)?;
    let at_start = fake.request_counts();
    let (child, addr) = start_http(
        "netchecker-server (enforce)",
        &a.bin_dir.join("netchecker-server"),
        &[],
        &[
            ("KUBECONFIG", kubeconfig.to_string_lossy().into_owned()),
            ("NETCHECKER_REPORT_AUTH", "enforce".to_owned()),
        ],
        "/readyz",
    )
    .await?;
    let _ = std::fs::remove_dir_all(&dir);
    let mut server = Target {
        label: "server (enforce)",
        child,
        addr,
        runs: Vec::new(),
    };
    let (child, addr) = start_http(
        "ceiling",
        &a.bin_dir.join("netchecker-bench-ceiling"),
        &[],
        &[],
        "/healthz",
    )
    .await?;
    let mut ceiling = Target {
        label: "ceiling",
        child,
        addr,
        runs: Vec::new(),
    };
    let before = fake.request_counts();

    // Every agent's first report: its token verified.
    let cpu0 = server.child.cpu_seconds();
    let t = Instant::now();
    fill(server.addr, &reports, a).await?;
    let cold = t.elapsed();
    let cold_cpu_us = (server.child.cpu_seconds() - cpu0) * 1e6 / a.agents as f64;
    let after_cold = fake.request_counts();
    // Every agent's second report: its token remembered.
    let cpu0 = server.child.cpu_seconds();
    let t = Instant::now();
    fill(server.addr, &reports, a).await?;
    let warm = t.elapsed();
    let warm_cpu_us = (server.child.cpu_seconds() - cpu0) * 1e6 / a.agents as f64;
    fill(ceiling.addr, &reports, a).await?;

    for round in 1..=a.rounds {
        if round % 2 == 1 {
            ceiling.load(&reports, Mode::KeepAlive, a, round).await?;
            server.load(&reports, Mode::KeepAlive, a, round).await?;
        } else {
            server.load(&reports, Mode::KeepAlive, a, round).await?;
            ceiling.load(&reports, Mode::KeepAlive, a, round).await?;
        }
    }
    let after = fake.request_counts();
    let failed: u64 = server.runs.iter().map(|(_, r, _)| r.failed).sum();
    if failed > 0 {
        bail!("{failed} authenticated reports failed");
    }
    let review = token_review(fake.addr(), &reports, 1000.min(a.agents)).await?;

    println!(
        "### Authenticated ingest (`--report-auth enforce`, {} agents)\n",
        a.agents
    );
    println!(
        "The server watches the fake Kubernetes API holding {} agent pods; each agent sends \
         its own pod-bound RS256 ServiceAccount token ({} bytes), verified offline against the \
         issuer's JWKS and remembered until it expires.\n",
        a.agents, token_len
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| first report of every agent (token verified): wall time / server CPU per report | {:.2} s / {:.0} µs |",
        cold.as_secs_f64(),
        cold_cpu_us
    );
    println!(
        "| second report of every agent (token remembered): wall time / server CPU per report | {:.2} s / {:.0} µs |",
        warm.as_secs_f64(),
        warm_cpu_us
    );
    let keys = |from: &netchecker_fake_apiserver::RequestCounts,
                to: &netchecker_fake_apiserver::RequestCounts| {
        (to.discovery - from.discovery) + (to.jwks - from.jwks)
    };
    println!(
        "| API requests for the keys (discovery + JWKS): at start-up / for the first reports / for all runs after | {} / {} / {} |",
        keys(&at_start, &before),
        keys(&before, &after_cold),
        keys(&after_cold, &after)
    );
    println!(
        "| TokenReview requests made | {} |",
        after.token_reviews - at_start.token_reviews
    );
    println!(
        "| TokenReview instead: one API request per new token, round trip p50 / p99 on the same (local, fake) API | {} / {} ms ({} reviews, 16 at a time) |",
        ms(review.value_at_quantile(0.5)),
        ms(review.value_at_quantile(0.99)),
        review.len()
    );
    println!();
    println!("#### keep-alive, tokens remembered\n");
    let ratios = round_rows(&ceiling, &server, Mode::KeepAlive);
    let m = ratio_line("Server (enforce)", &ratios);
    Ok(AuthFigures {
        ratio_keep_alive: m,
    })
}

/// `n` TokenReviews of the agents' tokens against the fake API, 16 at a
/// time: the round trip of each, in µs.
async fn token_review(
    api: SocketAddr,
    reports: &Arc<Reports>,
    n: usize,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (next, reports) = (next.clone(), reports.clone());
        workers.spawn(async move {
            let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(hist);
                }
                let token = reports.tokens[i].to_str()?.trim_start_matches("Bearer ");
                let body = serde_json::json!({
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "spec": {"token": token, "audiences": ["netchecker"]},
                });
                let t = Instant::now();
                let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(api).await?);
                let (mut sender, conn) =
                    hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io).await?;
                tokio::spawn(conn);
                let req = http::Request::post("/apis/authentication.k8s.io/v1/tokenreviews")
                    .header(http::header::HOST, api.to_string())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(serde_json::to_vec(&body)?)))?;
                let resp = sender.send_request(req).await?;
                let status = resp.status();
                let answer = resp.into_body().collect().await?.to_bytes();
                let v: serde_json::Value = serde_json::from_slice(&answer)
                    .with_context(|| format!("TokenReview answered {status}"))?;
                if v["status"]["authenticated"] != true {
                    bail!("TokenReview refused a valid token: {v}");
                }
                hist.saturating_record(t.elapsed().as_micros().max(1) as u64);
            }
        });
    }
    let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    while let Some(h) = workers.join_next().await {
        all.add(h??)?;
    }
    // Long enough for the fake to have answered every connection.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(all)
}
