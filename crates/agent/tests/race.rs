//! A report, HTTP probe or mesh probe whose SYN goes unanswered races a second
//! connection, on real loopback sockets and the kernel's own SYN timing.
//!
//! A listener that stops accepting and whose accept queue is full gets its
//! further SYNs dropped by Linux, unanswered; the client sends one again
//! only after TCP's 1 s initial retransmission timeout. When the listener
//! accepts again 100 ms later, a second connection started at the race
//! delay (200 ms) connects at once, while a single connection still waits
//! out the second; when that one's SYN is dropped too, a third follows. These tests run on the real clock (the kernel's timers
//! cannot be paused) and take about a second each; their margins are wide
//! and still fail without the race.

mod common;

use std::time::Duration;

use common::{REPORTS, Recorder, config, fill_queue};
use netchecker_agent::probe::probe;
use netchecker_agent::transport::{RequestSpec, request};
use netchecker_agent::{Agent, Attempts, Target};
use netchecker_wire::AttemptCounts;
use netchecker_wire::mesh::{Peer, ProbeOutcome};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// A recorder whose accept queue is full: SYNs to it go unanswered until
/// `open` is sent `true`. Returns it, the gate and the connections that
/// fill the queue (keep them).
async fn full_server() -> (Recorder, watch::Sender<bool>, Vec<TcpStream>) {
    let (gate, open) = watch::channel(false);
    let rec = Recorder::start_gated(1, open);
    let held = fill_queue(rec.addr()).await;
    (rec, gate, held)
}

/// Open `gate` after `after`.
fn open_after(gate: watch::Sender<bool>, after: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        gate.send_replace(true);
        // Keep the sender (and the gate open) until the test ends.
        std::future::pending::<()>().await;
    })
}

fn ping(rec: &Recorder) -> Target {
    format!("http://{}/api/v1/ping", rec.addr())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_unanswered_syn_is_raced_and_the_second_connection_wins() {
    // Two servers, both with a full queue, both accepting again at 100 ms:
    // one request races its connect at 200 ms, the other does not.
    let (raced_rec, raced_gate, _held_a) = full_server().await;
    let (single_rec, single_gate, _held_b) = full_server().await;
    let limit = Duration::from_secs(3);
    let mut raced_spec = RequestSpec::get(limit, None);
    raced_spec.race_after = Some(Duration::from_millis(200));
    let single_spec = RequestSpec::get(limit, None);
    let (raced_target, single_target) = (ping(&raced_rec), ping(&single_rec));
    let _a = open_after(raced_gate, Duration::from_millis(100));
    let _b = open_after(single_gate, Duration::from_millis(100));
    let (raced, single) = tokio::join!(
        request(&raced_target, raced_spec),
        request(&single_target, single_spec)
    );

    raced.outcome.as_ref().unwrap();
    let raced_at = raced.connected.unwrap() - raced.start;
    assert!(
        raced_at >= Duration::from_millis(190) && raced_at < Duration::from_millis(700),
        "the raced connection connected after {raced_at:?}"
    );
    assert_eq!(raced.connects.started(), 2);
    assert!(raced.connects.raced() && raced.connects.race_won());
    assert_eq!(raced.status.map(|s| s.as_u16()), Some(200));

    // The control: the kernel really dropped the SYN, and a single
    // connection waited for its retransmission.
    single.outcome.as_ref().unwrap();
    let single_at = single.connected.unwrap() - single.start;
    assert!(
        single_at >= Duration::from_millis(900),
        "the single connection connected after {single_at:?}: was its SYN dropped at all?"
    );
    assert_eq!(single.connects.started(), 1);
    assert!(!single.connects.raced() && !single.connects.race_won());
    // One request each reached the servers: the loser was dropped unused.
    assert_eq!(raced_rec.requests().len(), 1);
    assert_eq!(single_rec.requests().len(), 1);
}

/// The second connection's SYN is dropped too (the queue opens only at
/// 300 ms): a third, started at 400 ms, connects, long before either
/// lost SYN is sent again (1.0 s and 1.2 s).
#[tokio::test]
async fn a_lost_raced_syn_is_raced_again() {
    let (rec, gate, _held) = full_server().await;
    let mut spec = RequestSpec::get(Duration::from_secs(3), None);
    spec.race_after = Some(Duration::from_millis(200));
    let _open = open_after(gate, Duration::from_millis(300));
    let ex = request(&ping(&rec), spec).await;

    ex.outcome.as_ref().unwrap();
    let at = ex.connected.unwrap() - ex.start;
    assert!(
        at >= Duration::from_millis(390) && at < Duration::from_millis(900),
        "the third connection connected after {at:?}"
    );
    assert_eq!(ex.connects.started(), 3);
    assert!(ex.connects.raced() && ex.connects.race_won());
    assert_eq!(rec.requests().len(), 1);
}

/// An HTTP probe at a 2 s interval's timeout (800 ms), to a server whose
/// queue is full until 100 ms: its lost SYN would be sent again only at
/// 1 s, after the probe's end (the single connection of the test above
/// shows the kernel's timing); the raced one answers, and the lost SYN
/// shows as connect time.
#[tokio::test]
async fn a_probe_races_an_unanswered_syn_and_answers_within_its_timeout() {
    let (rec, gate, _held) = full_server().await;
    let _open = open_after(gate, Duration::from_millis(100));
    let result = probe(&ping(&rec), Duration::from_millis(800), None).await;

    assert_eq!(result.connection_result, 1, "{result:?}");
    assert_eq!(result.http_code, 200, "{result:?}");
    assert!(
        (190..700).contains(&result.tcp_connection),
        "connected after {} ms, the raced connection's",
        result.tcp_connection
    );
    assert!(result.total < 800, "{result:?}");
    assert_eq!(rec.requests().len(), 1);
}

/// A mesh probe (900 ms, a 1 s interval's) to a peer whose queue is full
/// until 100 ms: the raced connection connects at about 200 ms and the
/// probe goes on to its exchange (the recorder is no mesh peer, so its
/// answer is a bad one: what counts here is that the connect did not fail).
#[tokio::test]
async fn a_mesh_probe_races_an_unanswered_syn() {
    let (rec, gate, _held) = full_server().await;
    let _open = open_after(gate, Duration::from_millis(100));
    let peer = Peer {
        node: "node-2".into(),
        address: rec.addr().ip().to_string(),
        port: rec.addr().port(),
    };
    let result = netchecker_agent::mesh::probe(&peer, 0, Duration::from_millis(900)).await;

    assert_ne!(result.outcome, ProbeOutcome::ConnectFailed, "{result:?}");
    assert!(
        (190_000..700_000).contains(&result.connect_us),
        "connected after {} us, the raced connection's",
        result.connect_us
    );
    assert!(result.raced, "the result says the connect was raced");
}

#[tokio::test]
async fn a_connect_answered_in_time_or_refused_is_not_raced() {
    let rec = Recorder::start().await;
    let mut spec = RequestSpec::get(Duration::from_secs(2), None);
    spec.race_after = Some(Duration::from_millis(200));
    let ex = request(&ping(&rec), spec.clone()).await;
    ex.outcome.unwrap();
    assert_eq!(ex.connects.started(), 1);
    assert!(!ex.connects.raced());

    let closed = common::refused_addr().await;
    let target: Target = format!("http://{closed}/api/v1/ping").parse().unwrap();
    let t0 = Instant::now();
    let ex = request(&target, spec).await;
    let err = ex.outcome.unwrap_err().to_string();
    assert!(err.contains("cannot connect"), "{err}");
    assert!(t0.elapsed() < Duration::from_millis(200), "refused at once");
    assert_eq!(ex.connects.started(), 1);
    assert!(!ex.connects.raced());
}

/// The agent's report (its second round, which reports first) to a server
/// whose queue is full until 100 ms into the round: the raced connection
/// takes it at about 200 ms, within the 1 s report timeout a single SYN
/// would have used up; the counts say so, and so does the next report.
#[tokio::test]
async fn the_agents_report_races_an_unanswered_syn_and_counts_it() {
    let (gate, open) = watch::channel(true);
    let rec = Recorder::start_gated(1, open);
    let endpoint = rec.addr().to_string();
    // 2 s interval: report timeout 1 s, race delay 200 ms.
    let cfg = config(
        &["-serverendpoint", &endpoint, "-reportinterval=2"],
        "netchecker-agent-race",
        Some("node-1"),
    );
    let agent = Agent::new(cfg).unwrap();
    agent.round().await.unwrap();
    assert_eq!(rec.requests_to(REPORTS).len(), 1);

    gate.send_replace(false);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _held = fill_queue(rec.addr()).await;
    let gate = open_after(gate, Duration::from_millis(100));
    let t0 = std::time::Instant::now();
    agent.round().await.unwrap();
    let reports = rec.requests_to(REPORTS);
    assert_eq!(reports.len(), 2, "one attempt, taken");
    let after = reports[1].at - t0;
    assert!(
        after < Duration::from_millis(700),
        "the report arrived {after:?} into the round"
    );
    assert_eq!(
        agent.attempts(),
        Attempts {
            attempts: 2,
            connects: 3,
            raced: 1,
            race_won: 1,
            failed: 0,
            taken_after_retry: 0,
        }
    );

    // The next report tells the server how that one went.
    agent.round().await.unwrap();
    drop(gate);
    let third = rec.requests_to(REPORTS)[2].json();
    let told: AttemptCounts =
        serde_json::from_value(third["report_attempts"]["previous"].clone()).unwrap();
    assert_eq!(
        told,
        AttemptCounts {
            attempts: 1,
            connects: 2,
            raced: 1,
            race_won: 1,
            failed: 0,
            taken: true,
            first_try: true,
        }
    );
    assert_eq!(third["report_attempts"]["attempt"], 1);
}
