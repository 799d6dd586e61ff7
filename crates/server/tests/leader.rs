//! Several server replicas against one fake Kubernetes API over real HTTP:
//! exactly one holds the Lease and speaks (webhook events, node
//! conditions, Kubernetes Events); it hands over when it stops, steps down
//! when its lease is taken, and survives a conflicting renewal. Short
//! lease timings (3/2/1 s) keep each scenario to seconds.

use std::time::Duration;

use netchecker_fake_apiserver::{Failure, FakeApiServer, Fault, Verb};
use tokio::time::Instant;

mod common;
mod fixture;
mod in_process;
mod replicas;
mod scrape;
use replicas::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_replica_leads_and_the_other_takes_over_when_it_stops() {
    let api = fake().await;
    let a = replica(&api, "server-a", &[]).await;
    let b = replica(&api, "server-b", &[]).await;
    let leader = one_leader(&api, &[&a, &b]).await.id.clone();
    // It stays exactly one over several renewals.
    for _ in 0..10 {
        assert_eq!(leaders(&[&a, &b]).await.len(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(holder(&api).as_deref(), Some(leader.as_str()));
    assert_eq!(transitions(&api), 0);
    let (gone, stays) = if leader == a.id { (a, b) } else { (b, a) };
    let stopped = Instant::now();
    gone.stop().await;
    // Released at shutdown: taken over at the next retry, well within
    // the lease duration.
    eventually(
        "the other replica leads",
        Duration::from_secs(3),
        || async { stays.leads().await },
    )
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "{:?}",
        stopped.elapsed()
    );
    assert_eq!(holder(&api).as_deref(), Some(stays.id.as_str()));
    assert_eq!(transitions(&api), 1);
    stays.stop().await;
    assert_eq!(holder(&api), None, "released at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_lease_makes_the_leader_step_down_until_it_runs_out() {
    let api = fake().await;
    let a = replica(&api, "server-a", &[]).await;
    one_leader(&api, &[&a]).await;
    api.steal_lease(NS, LEASE, "rival").unwrap();
    // The next renewal finds the rival: it follows at once.
    eventually("server-a steps down", Duration::from_secs(2), || async {
        !a.leads().await
    })
    .await;
    assert_eq!(holder(&api).as_deref(), Some("rival"));
    assert_eq!(
        a.metric("netchecker_leader").await,
        0.0,
        "a follower says so"
    );
    // The rival never renews: once its 3 s run out, server-a takes over.
    eventually("server-a leads again", Duration::from_secs(6), || async {
        a.leads().await
    })
    .await;
    assert_eq!(holder(&api).as_deref(), Some("server-a"));
    assert_eq!(transitions(&api), 2);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_renewal_is_read_again_without_losing_the_lead() {
    let api = fake().await;
    let a = replica(&api, "server-a", &[]).await;
    one_leader(&api, &[&a]).await;
    // Two renewals in a row meet 409. Read again at once, the third write
    // of the same attempt succeeds; were a conflict an ordinary failure,
    // the 2 s renew deadline would pass and the leader would step down.
    api.fail_next(Fault::new("leases", Verb::Update, 409).times(2));
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(a.leads().await, "stepped down after a conflict");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(api.pending_faults().is_empty(), "the faults were met");
    assert_eq!(holder(&api).as_deref(), Some("server-a"));
    assert_eq!(transitions(&api), 0);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_its_lease_runs_out() {
    let api = fake().await;
    let a = replica(&api, "server-a", &[]).await;
    one_leader(&api, &[&a]).await;
    api.set_failure(Failure::Error(500));
    eventually("server-a steps down", Duration::from_secs(4), || async {
        !a.leads().await
    })
    .await;
    // The last renewal the others can see is less than the lease's 3 s
    // old: it stopped speaking before anyone could take over.
    let renewed = api
        .lease(NS, LEASE)
        .and_then(|l| l.spec?.renew_time)
        .unwrap()
        .0;
    let age = jiff::Timestamp::now().duration_since(renewed);
    assert!(age < jiff::SignedDuration::from_secs(3), "{age:?}");
    assert_eq!(holder(&api).as_deref(), Some("server-a"));
    // The API answers again: its own lease, renewed; it leads again.
    api.set_failure(Failure::None);
    eventually("server-a leads again", Duration::from_secs(4), || async {
        a.leads().await
    })
    .await;
    assert_eq!(transitions(&api), 0, "renewed, not taken over");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_are_sent_by_the_leader_only() {
    let api = fake().await;
    let (url, bodies) = receiver().await;
    let a = replica(&api, "server-a", &["--webhook-url", &url]).await;
    let b = replica(&api, "server-b", &["--webhook-url", &url]).await;
    let leader = one_leader(&api, &[&a, &b]).await.id.clone();
    // Healthy when first seen: no event. Then the pod agent stops (pod
    // network down), then it reports again (healthy): two changes.
    reporting(&[&a, &b], true, 3).await;
    reporting(&[&a, &b], false, 4).await;
    reporting(&[&a, &b], true, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got: Vec<String> = bodies
        .lock()
        .unwrap()
        .iter()
        .map(|b| format!("{}->{}", b["old_verdict"], b["new_verdict"]))
        .collect();
    assert_eq!(
        got,
        [
            r#""healthy"->"pod_network_down""#,
            r#""pod_network_down"->"healthy""#
        ],
        "each change exactly once"
    );
    let (l, f) = if leader == a.id { (&a, &b) } else { (&b, &a) };
    assert_eq!(l.metric("netchecker_events_suppressed_total").await, 0.0);
    assert_eq!(f.metric("netchecker_events_suppressed_total").await, 2.0);
    assert_eq!(
        f.metric(r#"netchecker_nodes{verdict="healthy"}"#).await,
        1.0,
        "the follower judges too"
    );
    a.stop().await;
    b.stop().await;
}

fn condition(api: &FakeApiServer) -> Option<(String, String, String, String)> {
    let c = api
        .node_conditions("node-1")?
        .into_iter()
        .find(|c| c.type_ == "NetcheckerNetworkProblem")?;
    Some((
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
        c.last_transition_time
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_sets_node_conditions_and_records_events() {
    let api = fake().await;
    let a = replica(&api, "server-a", &["--node-conditions"]).await;
    let b = replica(&api, "server-b", &["--node-conditions"]).await;
    one_leader(&api, &[&a, &b]).await;
    reporting(&[&a, &b], true, 3).await;
    // A new leader writes every judged node once: healthy, so False.
    let (status, reason, _, healthy_since) = condition(&api).expect("condition written");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NetworkOk"));
    // The pod agent stops; the first two patches fail and are retried.
    api.fail_next(Fault::new("nodes/status", Verb::Patch, 500).times(2));
    reporting(&[&a, &b], false, 4).await;
    eventually("condition True", Duration::from_secs(5), || {
        let down = condition(&api).is_some_and(|c| c.0 == "True");
        async move { down }
    })
    .await;
    let (_, reason, message, down_since) = condition(&api).unwrap();
    assert_eq!(reason, "PodNetworkDown");
    assert!(message.contains(POD), "{message}");
    assert_ne!(down_since, healthy_since, "the status changed");
    assert!(api.pending_faults().is_empty());
    reporting(&[&a, &b], true, 3).await;
    let (status, reason, _, _) = condition(&api).unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NetworkOk"));
    // One Event per change, from the leader only.
    let mut events: Vec<(String, String)> = api
        .events()
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("node-1"))
        .map(|e| (e.reason.unwrap_or_default(), e.type_.unwrap_or_default()))
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            ("Healthy".to_owned(), "Normal".to_owned()),
            ("PodNetworkDown".to_owned(), "Warning".to_owned())
        ]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_once_its_lease_runs_out() {
    let api = fake().await;
    let mut servers = [process(&api, "server-a"), process(&api, "server-b")];
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let a = process_leads(&servers[0]).await == Some(true);
        let b = process_leads(&servers[1]).await == Some(true);
        if a != b && holder(&api).is_some() {
            break usize::from(b);
        }
        assert!(Instant::now() < deadline, "no single leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids = ["server-a", "server-b"];
    assert_eq!(holder(&api).as_deref(), Some(ids[leader]));
    // SIGKILL: no release; the lease must run out (3 s) first.
    servers[leader].child.kill().unwrap();
    servers[leader].child.wait().unwrap();
    let killed = Instant::now();
    let other = 1 - leader;
    eventually(
        "the other process leads",
        Duration::from_secs(6),
        || async { process_leads(&servers[other]).await == Some(true) },
    )
    .await;
    let took = killed.elapsed();
    // Not before the lease ran out (renewed at most a retry period before
    // the kill), and within its duration plus one retry period.
    assert!(
        took > Duration::from_millis(1500),
        "taken too early: {took:?}"
    );
    assert!(took < Duration::from_millis(4500), "{took:?}");
    assert_eq!(holder(&api).as_deref(), Some(ids[other]));
    let logs = servers[other].logs();
    assert!(logs.contains("the leader changed"), "{logs}");
}
