//! The prober against peers on loopback that behave in one way each: a
//! probe listener (ok), a closed port (connect_failed), a peer that takes
//! the connection but never answers or breaks it (transfer_failed), and
//! peers that answer something other than the padding (bad_answer).

mod common;

use std::time::Duration;

use common::mesh::{MeshPeer, Script, Scripted, http_answer, peer};
use common::refused_addr;
use netchecker_agent::mesh::{probe, probe_round};
use netchecker_wire::mesh::{MAX_PROBE_PADDING, MeshRound, Peer, PeerResult, ProbeOutcome};
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(2);

async fn probe_of(peer: &Peer, padding: usize) -> PeerResult {
    probe(peer, padding, LIMIT).await
}

#[tokio::test]
async fn a_probe_listener_answers_ok_with_the_times() {
    let listener = MeshPeer::start().await;
    let peer = listener.peer("node-2");
    for padding in [0, 1500, 9000] {
        let r = probe_of(&peer, padding).await;
        assert_eq!(r.outcome, ProbeOutcome::Ok, "{r:?}");
        assert_eq!(
            (r.node.as_str(), r.address.as_str()),
            ("node-2", "127.0.0.1")
        );
        assert_eq!(r.padding as usize, padding);
        assert!(r.transfer_us > 0, "{r:?}");
        assert!(!r.raced, "a connect answered at once is not raced: {r:?}");
        assert!(r.total_us >= r.connect_us + r.transfer_us, "{r:?}");
        assert!(r.total_us < 2_000_000, "{r:?}");
        assert_eq!(r.error, "");
    }
    // The padding is capped at the protocol's largest.
    let r = probe_of(&peer, MAX_PROBE_PADDING + 10).await;
    assert_eq!(
        (r.outcome, r.padding as usize),
        (ProbeOutcome::Ok, MAX_PROBE_PADDING)
    );
}

#[tokio::test]
async fn a_closed_port_is_connect_failed() {
    let peer = peer("node-3", refused_addr().await);
    let r = probe_of(&peer, 1500).await;
    assert_eq!(r.outcome, ProbeOutcome::ConnectFailed, "{r:?}");
    assert!(r.error.contains("refused"), "{r:?}");
    assert_eq!((r.connect_us, r.transfer_us), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_answers_is_transfer_failed_at_the_limit() {
    // What an MTU blackhole looks like from here: the connect works, the
    // full-size packets never arrive, so no answer ever comes.
    for script in [Script::HoldAfterHead, Script::AnswerAndHold(Vec::new())] {
        let silent = Scripted::start(script.clone()).await;
        let r = probe_of(&silent.peer("node-4"), 1500).await;
        assert_eq!(r.outcome, ProbeOutcome::TransferFailed, "{script:?}: {r:?}");
        assert_eq!(r.total_us, 2_000_000, "{r:?}");
        assert_eq!(r.transfer_us, 0);
        assert_eq!(r.error, "no complete answer within 2s");
    }
    // The head arrives, the padding does not.
    let stalled = Scripted::start(Script::AnswerAndHold(http_answer(
        "200 OK", 1500, &[0; 100],
    )))
    .await;
    let r = probe_of(&stalled.peer("node-4"), 1500).await;
    assert_eq!(r.outcome, ProbeOutcome::TransferFailed, "{r:?}");
    assert_eq!(r.total_us, 2_000_000);
}

#[tokio::test]
async fn a_connection_broken_before_the_answer_is_transfer_failed() {
    let closing = Scripted::start(Script::CloseAfterHead).await;
    let r = probe_of(&closing.peer("node-5"), 1500).await;
    assert_eq!(r.outcome, ProbeOutcome::TransferFailed, "{r:?}");
    assert!(!r.error.is_empty());
    let cut = Scripted::start(Script::Answer(http_answer("200 OK", 1500, &[0; 100]))).await;
    let r = probe_of(&cut.peer("node-5"), 1500).await;
    assert_eq!(r.outcome, ProbeOutcome::TransferFailed, "{r:?}");
    // The peer's listener waited 5 s for the padding in vain (a limit
    // longer than that): the padding did not get there.
    let waited = Scripted::start(Script::Answer(http_answer("408 Request Timeout", 0, &[]))).await;
    let r = probe_of(&waited.peer("node-5"), 1500).await;
    assert_eq!(r.outcome, ProbeOutcome::TransferFailed, "{r:?}");
    assert!(r.error.contains("408"), "{r:?}");
}

#[tokio::test]
async fn anything_but_the_padding_back_is_a_bad_answer() {
    const SECRET: &[u8] = b"s3cr3t-body";
    let mut not_zeros = vec![0u8; 1500];
    not_zeros[700..700 + SECRET.len()].copy_from_slice(SECRET);
    for (answer, why) in [
        (http_answer("404 Not Found", SECRET.len(), SECRET), "404"),
        (
            http_answer("200 OK", SECRET.len(), SECRET),
            "bytes for 1500",
        ),
        (http_answer("200 OK", 1500, &not_zeros), "not the padding"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5dd\r\n"
                .iter()
                .copied()
                .chain([0; 1501])
                .chain(*b"\r\n0\r\n\r\n")
                .collect(),
            "more than 1500",
        ),
        (b"SSH-2.0-OpenSSH_9.6 s3cr3t-body\r\n".to_vec(), ""),
    ] {
        let peer = Scripted::start(Script::Answer(answer.clone())).await;
        let r = probe_of(&peer.peer("node-6"), 1500).await;
        let shown = String::from_utf8_lossy(&answer[..40.min(answer.len())]).into_owned();
        assert_eq!(r.outcome, ProbeOutcome::BadAnswer, "{shown}: {r:?}");
        assert!(r.error.contains(why), "{shown}: {r:?}");
        assert!(!r.error.contains("s3cr3t"), "the peer's body leaked: {r:?}");
        assert!(r.connect_us > 0 || r.total_us > 0);
        assert_eq!(r.transfer_us, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn a_round_probes_concurrently_and_ends_by_its_deadline() {
    let ok = MeshPeer::start().await;
    let silent = Scripted::start(Script::HoldAfterHead).await;
    let closed = refused_addr().await;
    // 20 silent peers: more than are probed at a time.
    let mut peers: Vec<Peer> = (0..20)
        .map(|i| silent.peer(&format!("silent-{i}")))
        .collect();
    peers.push(ok.peer("node-ok"));
    peers.push(peer("node-closed", closed));
    peers.push(Peer {
        node: "node-named".into(),
        address: "node-named.example".into(),
        port: 8083,
    });
    let round = MeshRound {
        round: 3,
        timeout_ms: 2000,
        peers,
    };
    let t0 = Instant::now();
    // Room for 3 s: the first 16 silent peers take 2 s, the other 4 are
    // cut to the 1 s left, the last two are quick.
    let results = probe_round(&round, 1500, LIMIT, t0 + Duration::from_secs(3)).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(3));
    // The peer without an IP address is left out; the order is kept.
    assert_eq!(results.len(), 22);
    for (i, r) in results[..20].iter().enumerate() {
        assert_eq!(r.node, format!("silent-{i}"));
        assert_eq!(r.outcome, ProbeOutcome::TransferFailed);
        let want = if i < 16 { 2_000_000 } else { 1_000_000 };
        assert_eq!(r.total_us, want, "{r:?}");
    }
    assert_eq!(results[20].outcome, ProbeOutcome::Ok, "{:?}", results[20]);
    assert_eq!(results[21].outcome, ProbeOutcome::ConnectFailed);

    // Past the deadline nothing is probed; no limit from the server means
    // the agent's own.
    let late = probe_round(&round, 1500, LIMIT, Instant::now()).await;
    assert!(late.is_empty());
    let round = MeshRound {
        timeout_ms: 0,
        peers: vec![silent.peer("silent")],
        ..round
    };
    let t0 = Instant::now();
    let results = probe_round(&round, 1500, Duration::from_millis(1500), t0 + LIMIT * 10).await;
    assert_eq!(results[0].total_us, 1_500_000);
}
