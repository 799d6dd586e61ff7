//! When the report leaves and what it carries: at the start of each round,
//! with the previous round's probe results, while this round's probes run;
//! the first round probes first, so that its report is complete. And every
//! attempt counted: in the stats, the `agent stopped` line and the next
//! report's `report_attempts`. On tokio's paused clock: the agent and the
//! recorders run on this thread over loopback, and time moves only when
//! all of them wait.

mod common;

use std::time::Duration;

use common::logs::Logs;
use common::{Behaviour, REPORTS, Recorder, config};
use netchecker_agent::{Attempts, Stats};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Run the agent with `args` until `reports` reports reached `rec`, and
/// three more seconds (the last round's probes take 2 s in one test);
/// returns the reports, their times from the start in
/// seconds, and the agent's counts.
async fn run_until(rec: &Recorder, args: &[&str], reports: usize) -> (Vec<Value>, Vec<f64>, Stats) {
    let endpoint = rec.addr().to_string();
    let mut all = vec!["-serverendpoint", &endpoint, "-reportinterval=10"];
    all.extend_from_slice(args);
    let cfg = config(&all, "netchecker-agent-timing", Some("node-1"));
    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let agent = tokio::spawn(netchecker_agent::run(cfg, stop.clone()));
    let got = rec
        .wait_for(REPORTS, reports, Duration::from_secs(600))
        .await;
    // Let the last round finish before stopping.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    let stats = agent.await.unwrap().unwrap();
    let times = common::seconds_since(t0, &got);
    (got.iter().map(|r| r.json()).collect(), times, stats)
}

/// A probe server that answers 201 to the first probe, 202 to the second,
/// and so on, each after 2 s; and the agent flag that probes it (under
/// the path the recorder scripts answers for).
async fn counting_probe() -> (Recorder, String) {
    let probed = Recorder::start().await;
    let slow = |status| Behaviour {
        status,
        head_delay: Duration::from_secs(2),
        ..Behaviour::default()
    };
    probed.answer_reports((201..=209).map(slow));
    let flag = format!("-probeurls=http://{}{REPORTS}probe", probed.addr());
    (probed, flag)
}

/// The status of the [`counting_probe`] each report carries: which
/// round's probe it is.
fn probe_codes(reports: &[Value]) -> Vec<i64> {
    reports
        .iter()
        .map(|r| {
            let p = r["network_probes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["URL"].as_str().unwrap().ends_with("probe"))
                .expect("the probe URL is reported");
            p["HTTPCode"].as_i64().unwrap()
        })
        .collect()
}

/// The probe's answer tells which round probed: the probe server answers
/// 201 to the first probe, 202 to the second, and so on, each after 2 s.
#[tokio::test(start_paused = true)]
async fn the_report_leaves_at_the_start_of_the_round_with_the_previous_rounds_probes() {
    let rec = Recorder::start().await;
    let (probed, probe_url) = counting_probe().await;
    let (reports, times, stats) = run_until(&rec, &[&probe_url], 4).await;

    // The first report after its probes (2 s); then each at the very start
    // of its round, not after that round's 2 s probe.
    assert_eq!(times, [2.0, 10.0, 20.0, 30.0]);
    let probes = probed.requests_to(REPORTS);
    assert_eq!(probes.len(), 4, "one probe per round");
    // Which round's probe each report carries: the first its own (201),
    // the second the first round's again (the only results there are),
    // then each the previous round's.
    assert_eq!(probe_codes(&reports), [201, 201, 202, 203]);
    for r in &reports {
        // The server's ping is probed each round too.
        assert_eq!(r["network_probes"][0]["HTTPCode"], 200);
        assert_eq!(r["nslookup"]["127.0.0.1"], json!(["127.0.0.1"]));
    }
    // What is read at once is read at sending time.
    assert_ne!(reports[1]["hostdate"], reports[2]["hostdate"]);

    // The first report says nothing about attempts (there is nothing to
    // tell: it is byte for byte what it always was); the next ones tell
    // how the previous one went.
    assert!(
        reports[0].get("report_attempts").is_none(),
        "{}",
        reports[0]
    );
    let went_well = json!({"attempt": 1, "previous": {"attempts": 1, "connects": 1,
        "raced": 0, "race_won": 0, "failed": 0, "taken": true, "first_try": true}});
    for r in &reports[1..] {
        assert_eq!(r["report_attempts"], went_well);
    }
    assert_eq!((stats.rounds, stats.sent, stats.failed), (4, 4, 0));
}

/// After a round whose report did not get through, the next round probes
/// first: the probes that ran beside a failed report likely saw the same
/// outage, and reporting them once the path is back would name a fault
/// that has passed.
#[tokio::test(start_paused = true)]
async fn after_a_failed_round_the_report_carries_fresh_probes() {
    let rec = Recorder::start().await;
    // The first report is refused (a refusal is not retried).
    rec.answer_reports([Behaviour {
        status: 503,
        ..Behaviour::default()
    }]);
    // Kept alive for the whole test: it serves the probes.
    let (_probed, probe_url) = counting_probe().await;
    let (reports, times, stats) = run_until(&rec, &[&probe_url], 4).await;
    // Refused at 2 s; the next round probes first (report at 12 s, with its
    // own probe, 202); then back to the start of each round.
    assert_eq!(times, [2.0, 12.0, 20.0, 30.0]);
    assert_eq!(probe_codes(&reports), [201, 202, 202, 203]);
    assert_eq!((stats.rounds, stats.failed), (4, 1));
}

/// A report whose first attempt runs out of time (the server answers only
/// after 6 s; the report timeout is 5 s) is sent again 100 ms later and
/// taken; every attempt is counted, and the next report tells the server.
#[tokio::test(start_paused = true)]
async fn every_attempt_is_counted_and_told_to_the_server() {
    let (logs, _capturing) = Logs::capture();
    let rec = Recorder::start().await;
    rec.answer_reports([Behaviour {
        head_delay: Duration::from_secs(6),
        ..Behaviour::default()
    }]);
    let (reports, times, stats) = run_until(&rec, &[], 4).await;
    assert_eq!(times, [0.0, 5.1, 10.0, 20.0]);

    // The retry is the same report, attempt 2, with nothing before it.
    assert!(reports[0].get("report_attempts").is_none());
    assert_eq!(reports[1]["report_attempts"], json!({"attempt": 2}));
    assert_eq!(reports[0]["network_probes"], reports[1]["network_probes"]);
    // The next report: how the first went (two attempts, one failed, taken
    // by the retry); the one after: at the first try.
    assert_eq!(
        reports[2]["report_attempts"],
        json!({"attempt": 1, "previous": {"attempts": 2, "connects": 2,
            "raced": 0, "race_won": 0, "failed": 1, "taken": true, "first_try": false}})
    );
    assert_eq!(reports[3]["report_attempts"]["previous"]["first_try"], true);
    assert_eq!(reports[3]["report_attempts"]["previous"]["attempts"], 1);

    assert_eq!(
        stats.attempts,
        Attempts {
            attempts: 4,
            connects: 4,
            raced: 0,
            race_won: 0,
            failed: 1,
            taken_after_retry: 1,
        }
    );
    assert_eq!(
        (stats.rounds, stats.sent, stats.failed, stats.retries),
        (3, 3, 0, 1)
    );
    let summary = &logs.lines_with("agent stopped")[0];
    assert!(
        summary.contains(
            "attempts=4 connects=4 raced=0 race_won=0 attempts_failed=1 taken_after_retry=1"
        ),
        "{summary}"
    );
    // Each round's counts at debug level.
    let rounds = logs.lines_with("report attempts of the round");
    assert_eq!(rounds.len(), 3, "{}", logs.text());
    assert!(
        rounds[0].contains("attempts=2") && rounds[0].contains("failed=1"),
        "{}",
        rounds[0]
    );
    assert!(rounds[0].contains("taken_after_retry=1"), "{}", rounds[0]);
    assert!(
        rounds[1].contains("attempts=1") && rounds[1].contains("failed=0"),
        "{}",
        rounds[1]
    );
}
