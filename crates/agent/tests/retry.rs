//! A report refused with "no watched agent pod is named …" (a new pod whose
//! first report raced the server's watch) goes out again after 1 s, 2 s,
//! 4 s … until the next report is due; any other refusal waits for the next
//! report. On tokio's paused clock: the agent and the recorder run on this
//! thread over loopback, and time moves only when all of them wait.

mod common;

use std::time::Duration;

use common::logs::Logs;
use common::{Behaviour, REPORTS, Recorder, config};
use netchecker_agent::Stats;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const NOT_WATCHED: &str = "no watched agent pod is named \"netchecker-agent-new\": \
                           reports are accepted only from the agent pods the server watches";

fn answer(status: u16, body: &'static str) -> Behaviour {
    Behaviour {
        status,
        body,
        ..Behaviour::default()
    }
}

/// Run the agent (interval 60 s, the default) against `rec` until `reports`
/// reports arrived; returns their times from the start, in seconds, and the
/// agent's counts.
async fn run_until(rec: &Recorder, reports: usize) -> (Vec<f64>, Stats) {
    let endpoint = rec.addr().to_string();
    let cfg = config(
        &["-serverendpoint", &endpoint, "-reportinterval=60"],
        "netchecker-agent-new",
        Some("node-1"),
    );
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let agent = tokio::spawn(netchecker_agent::run(cfg, stop.clone()));
    let got = rec
        .wait_for(REPORTS, reports, Duration::from_secs(600))
        .await;
    stop.cancel();
    let stats = agent.await.unwrap().unwrap();
    let times = common::seconds_since(t0, &got);
    (times, stats)
}

#[tokio::test(start_paused = true)]
async fn a_report_from_a_pod_not_watched_yet_is_retried_after_1_2_4_s() {
    let (logs, _capturing) = Logs::capture();
    let rec = Recorder::start().await;
    rec.answer_reports([
        answer(404, NOT_WATCHED),
        answer(404, NOT_WATCHED),
        answer(404, NOT_WATCHED),
    ]);
    let (times, stats) = run_until(&rec, 5).await;
    // Accepted at the third retry; the next report keeps the schedule.
    assert_eq!(times, [0.0, 1.0, 3.0, 7.0, 60.0]);
    assert_eq!((stats.retries, stats.failed), (3, 0), "{stats:?}");
    // Each retry is the same report, sent afresh (its time of sending too).
    let reports = rec.requests_to(REPORTS);
    let (first, retry) = (reports[0].json(), reports[3].json());
    assert_eq!(first["ips"], retry["ips"]);
    assert_eq!(first["network_probes"], retry["network_probes"]);
    assert_ne!(first["hostdate"], retry["hostdate"]);
    // One line for the episode, not one per retry.
    let episode = logs.lines_with("does not watch this pod yet");
    assert_eq!(episode.len(), 1, "{}", logs.text());
    assert!(episode[0].contains("INFO"), "{}", episode[0]);
    assert!(logs.lines_with("report failed").is_empty());
}

#[tokio::test(start_paused = true)]
async fn retries_stop_before_the_next_report_is_due() {
    let (logs, _capturing) = Logs::capture();
    let rec = Recorder::start().await;
    rec.set(answer(404, NOT_WATCHED));
    let (times, stats) = run_until(&rec, 12).await;
    // 1 + 2 + 4 + 8 + 16 s: the next pause (32 s) would end after 60 s.
    assert_eq!(
        times,
        [
            0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 60.0, 61.0, 63.0, 67.0, 75.0, 91.0
        ]
    );
    assert_eq!((stats.rounds, stats.failed, stats.retries), (2, 1, 10));
    // Still one episode; each failed round is logged as before.
    assert_eq!(logs.lines_with("does not watch this pod yet").len(), 1);
    let failed = logs.lines_with("report failed");
    assert_eq!(failed.len(), 1, "{}", logs.text());
    assert!(failed[0].contains("server answered 404"), "{}", failed[0]);
}

#[tokio::test(start_paused = true)]
async fn other_refusals_wait_for_the_next_report() {
    for refusal in [
        answer(404, "404 page not found"),
        answer(500, "injected fault"),
        answer(400, "invalid report: hostdate is missing"),
    ] {
        let rec = Recorder::start().await;
        rec.set(refusal.clone());
        let (times, stats) = run_until(&rec, 3).await;
        assert_eq!(times, [0.0, 60.0, 120.0], "{refusal:?}");
        assert_eq!((stats.failed, stats.retries), (2, 0), "{refusal:?}");
    }
}
