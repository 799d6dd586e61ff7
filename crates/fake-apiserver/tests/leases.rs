//! Leases through the real kube client: create, get, replace with the
//! resourceVersion rule leader election relies on (a stale version gets
//! `409 Conflict` and changes nothing; of two racing updates from one
//! version exactly one wins), patches, delete, and the test-side ways to
//! take a lease away (steal, expire, one-shot faults).

mod support;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use netchecker_fake_apiserver::{FakeApiServer, Fault, Verb, lease};
use serde_json::json;
use support::{api_error, client_for, namespaced};

const NS: &str = "netchecker";
const NAME: &str = "netchecker-server";

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn version(lease: &Lease) -> u64 {
    lease
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// What a candidate does to renew or take over: the lease it last read,
/// held by `identity` and renewed now.
fn renewed(mut lease: Lease, identity: &str) -> Lease {
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some(identity.to_owned());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    lease
}

#[tokio::test]
async fn create_get_replace_and_a_stale_replace_conflicts() {
    let fake = FakeApiServer::start().await;
    let leases: Api<Lease> = namespaced(&fake, NS).await;
    let pp = PostParams::default();

    let created = leases
        .create(&pp, &lease(NS, NAME, "server-0"))
        .await
        .unwrap();
    assert_eq!(holder(&created), Some("server-0"));
    assert!(created.metadata.uid.is_some());
    assert_eq!(version(&created), fake.resource_version());
    assert_eq!(leases.get(NAME).await.unwrap(), created);
    assert_eq!(fake.lease(NS, NAME).unwrap(), created);
    assert_eq!(
        api_error(leases.create(&pp, &lease(NS, NAME, "server-1")).await),
        (409, "AlreadyExists".to_owned())
    );

    let replaced = leases
        .replace(NAME, &pp, &renewed(created.clone(), "server-0"))
        .await
        .unwrap();
    assert!(version(&replaced) > version(&created));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    assert_eq!(
        replaced.metadata.creation_timestamp,
        created.metadata.creation_timestamp
    );

    // A candidate still holding the first version loses, and nothing moves.
    let stale = leases
        .replace(NAME, &pp, &renewed(created.clone(), "server-1"))
        .await;
    assert_eq!(api_error(stale), (409, "Conflict".to_owned()));
    assert_eq!(fake.lease(NS, NAME).unwrap(), replaced);

    assert_eq!(
        api_error(leases.get("other").await),
        (404, "NotFound".to_owned())
    );
    let mut ghost = lease(NS, "other", "x");
    ghost.metadata.resource_version = Some("1".to_owned());
    assert_eq!(api_error(leases.replace("other", &pp, &ghost).await).0, 404);

    let listed = leases.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items, std::slice::from_ref(&replaced));
    let everywhere = Api::<Lease>::all(client_for(&fake).await);
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let stale_delete = DeleteParams::default().preconditions(kube::api::Preconditions {
        resource_version: created.metadata.resource_version.clone(),
        uid: None,
    });
    assert_eq!(api_error(leases.delete(NAME, &stale_delete).await).0, 409);
    let status = leases
        .delete(NAME, &DeleteParams::default())
        .await
        .unwrap()
        .right()
        .expect("a delete answers a Status");
    assert_eq!(status.details.unwrap().name, NAME);
    assert_eq!(fake.lease(NS, NAME), None);
    assert_eq!(api_error(leases.get(NAME).await).0, 404);
    assert!(fake.lease_requests() >= 10);
}

#[tokio::test]
async fn of_two_racing_replacements_from_one_version_exactly_one_wins() {
    let fake = FakeApiServer::start().await;
    let a: Api<Lease> = namespaced(&fake, NS).await;
    let b: Api<Lease> = namespaced(&fake, NS).await;
    a.create(&PostParams::default(), &lease(NS, NAME, "nobody"))
        .await
        .unwrap();
    for round in 0..20 {
        let seen = a.get(NAME).await.unwrap();
        let pp = PostParams::default();
        let (for_a, for_b) = (
            renewed(seen.clone(), &format!("a{round}")),
            renewed(seen.clone(), &format!("b{round}")),
        );
        let (ra, rb) = tokio::join!(a.replace(NAME, &pp, &for_a), b.replace(NAME, &pp, &for_b));
        let winner = match (ra, rb) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => {
                assert_eq!(api_error::<Lease>(Err(lost)).0, 409, "round {round}");
                won
            }
            (ra, rb) => panic!("round {round}: both or neither won: {ra:?} {rb:?}"),
        };
        assert_eq!(fake.lease(NS, NAME).unwrap(), winner, "round {round}");
        assert_eq!(version(&winner), version(&seen) + 1, "one write per round");
    }
}

#[tokio::test]
async fn merge_patches_and_applies() {
    let fake = FakeApiServer::start().await;
    let leases: Api<Lease> = namespaced(&fake, NS).await;
    let created = leases
        .create(&PostParams::default(), &lease(NS, NAME, "server-0"))
        .await
        .unwrap();

    let merge =
        Patch::Merge(json!({"spec": {"holderIdentity": "server-1", "leaseTransitions": 1}}));
    let patched = leases
        .patch(NAME, &PatchParams::default(), &merge)
        .await
        .unwrap();
    assert_eq!(holder(&patched), Some("server-1"));
    let spec = patched.spec.as_ref().unwrap();
    assert_eq!(spec.lease_duration_seconds, Some(15), "other fields stay");
    assert!(version(&patched) > version(&created));

    let stale = Patch::Merge(json!({
        "metadata": {"resourceVersion": created.metadata.resource_version},
        "spec": {"holderIdentity": "server-2"},
    }));
    let refused = leases.patch(NAME, &PatchParams::default(), &stale).await;
    assert_eq!(api_error(refused), (409, "Conflict".to_owned()));
    assert_eq!(fake.lease(NS, NAME).unwrap(), patched);

    let apply = PatchParams::apply("netchecker-server");
    let mut other = lease(NS, "applied", "server-0");
    other.metadata.namespace = None;
    let applied = leases
        .patch("applied", &apply, &Patch::Apply(&other))
        .await
        .unwrap();
    assert_eq!(holder(&applied), Some("server-0"), "apply creates");
    let applied = leases
        .patch(
            "applied",
            &apply,
            &Patch::Apply(
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "spec": {"holderIdentity": "server-1"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(holder(&applied), Some("server-1"));
    assert_eq!(
        applied.spec.unwrap().lease_duration_seconds,
        Some(15),
        "apply merges"
    );
    let untyped = Patch::Apply(json!({"spec": {"holderIdentity": "x"}}));
    assert_eq!(
        api_error(leases.patch("applied", &apply, &untyped).await).0,
        400
    );
    let missing = leases.patch("ghost", &PatchParams::default(), &merge).await;
    assert_eq!(api_error(missing).0, 404);
}

#[tokio::test]
async fn a_stolen_or_expired_lease_and_one_shot_faults() {
    let fake = FakeApiServer::start().await;
    let leases: Api<Lease> = namespaced(&fake, NS).await;
    let pp = PostParams::default();
    let mine = leases
        .create(&pp, &lease(NS, NAME, "server-0"))
        .await
        .unwrap();

    let stolen = fake.steal_lease(NS, NAME, "rival").unwrap();
    assert_eq!(holder(&stolen), Some("rival"));
    assert_eq!(stolen.spec.as_ref().unwrap().lease_transitions, Some(1));
    let renewal = leases.replace(NAME, &pp, &renewed(mine, "server-0")).await;
    assert_eq!(
        api_error(renewal).0,
        409,
        "the old holder's renewal conflicts"
    );

    let expired = fake.expire_lease(NS, NAME).unwrap();
    let renew = expired.spec.as_ref().unwrap().renew_time.clone().unwrap().0;
    assert!(Timestamp::now().duration_since(renew) > SignedDuration::from_secs(15));
    assert_eq!(holder(&expired), Some("rival"));

    fake.fail_next(Fault::new("leases", Verb::Update, 409));
    fake.fail_next(Fault::new("leases", Verb::Get, 500));
    let current = fake.lease(NS, NAME).unwrap();
    let taken = leases
        .replace(NAME, &pp, &renewed(current.clone(), "server-0"))
        .await;
    assert_eq!(api_error(taken), (409, "Conflict".to_owned()));
    assert_eq!(
        fake.lease(NS, NAME).unwrap(),
        current,
        "a failed write changes nothing"
    );
    assert_eq!(api_error(leases.get(NAME).await).0, 500);
    assert!(fake.pending_faults().is_empty());
    let taken = leases
        .replace(NAME, &pp, &renewed(current, "server-0"))
        .await
        .unwrap();
    assert_eq!(holder(&taken), Some("server-0"));
}
