//! The test handle's methods for what a highly available server writes:
//! leases (and stealing or expiring them), config maps, events, node
//! conditions, and one-shot faults.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, NodeCondition};
use k8s_openapi::api::events::v1::Event as EventV1;

use crate::api::events::EventsV1;
use crate::api::view::View;
use crate::faults::Fault;
use crate::leases;
use crate::nodes::set_condition;

use super::FakeApiServer;

impl FakeApiServer {
    /// The stored lease `namespace/name`.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.state.leases.get(namespace, name)
    }

    /// The stored leases, ordered by namespace and name.
    pub fn leases(&self) -> Vec<Lease> {
        self.state.leases.snapshot().0
    }

    /// Add a lease, or replace the one of the same name unconditionally
    /// (see [`crate::lease`]); returns it with its new resourceVersion.
    ///
    /// # Panics
    /// If the lease has no `metadata.name`.
    pub fn put_lease(&self, lease: Lease) -> Lease {
        self.state
            .leases
            .upsert(lease)
            .expect("a lease added to the fake API server needs metadata.name")
    }

    /// Hand a stored lease to `holder`, as a rival candidate that acquired
    /// it would (see [`crate::leases::steal`]): the holder's next renewal
    /// from the old resourceVersion gets `409 Conflict`. `None` when there
    /// is no such lease.
    pub fn steal_lease(&self, namespace: &str, name: &str, holder: &str) -> Option<Lease> {
        self.state
            .leases
            .modify(namespace, name, |lease| leases::steal(lease, holder))
    }

    /// Make a stored lease look abandoned (see [`crate::leases::expire`]).
    pub fn expire_lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.state.leases.modify(namespace, name, leases::expire)
    }

    /// Delete a lease; its final state, or `None`.
    pub fn delete_lease(&self, namespace: &str, name: &str) -> Option<Lease> {
        self.state.leases.delete(namespace, name)
    }

    /// The stored config map `namespace/name`.
    pub fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        self.state.config_maps.get(namespace, name)
    }

    /// The stored config maps, ordered by namespace and name.
    pub fn config_maps(&self) -> Vec<ConfigMap> {
        self.state.config_maps.snapshot().0
    }

    /// Add a config map, or replace the one of the same name
    /// unconditionally; returns it with its new resourceVersion.
    ///
    /// # Panics
    /// If the config map has no `metadata.name`.
    pub fn put_config_map(&self, config_map: ConfigMap) -> ConfigMap {
        self.state
            .config_maps
            .upsert(config_map)
            .expect("a config map added to the fake API server needs metadata.name")
    }

    /// Delete a config map; its final state, or `None`.
    pub fn delete_config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        self.state.config_maps.delete(namespace, name)
    }

    /// The stored events (written through either API) as core v1 Events,
    /// ordered by namespace and name.
    pub fn events(&self) -> Vec<Event> {
        self.state.events.snapshot().0
    }

    /// The stored events as `events.k8s.io/v1` Events.
    pub fn events_v1(&self) -> Vec<EventV1> {
        self.events()
            .iter()
            .map(|event| {
                serde_json::from_value(EventsV1::to_wire(event))
                    .expect("the events.k8s.io view of an event deserializes")
            })
            .collect()
    }

    /// The conditions of the stored node `name` (empty when it has none);
    /// `None` when there is no such node.
    pub fn node_conditions(&self, name: &str) -> Option<Vec<NodeCondition>> {
        let node = self.node(name)?;
        Some(node.status.and_then(|s| s.conditions).unwrap_or_default())
    }

    /// Set a condition of the stored node `name` by its type (replacing
    /// the one of that type, else appending it): watchers see `MODIFIED`.
    /// The stored node, or `None` when there is no such node.
    pub fn set_node_condition(&self, name: &str, condition: NodeCondition) -> Option<Node> {
        self.state
            .nodes
            .modify("", name, |node| set_condition(node, condition))
    }

    /// Make the next `fault.times` requests of `fault.verb` on
    /// `fault.resource` fail with `fault.status` (see [`crate::faults`]).
    ///
    /// # Panics
    /// If the fault is invalid (unknown resource, status outside
    /// 400..=599, zero times): a mistake in the test.
    pub fn fail_next(&self, fault: Fault) {
        if let Err(why) = fault.validate() {
            panic!("invalid fault {fault:?}: {why}");
        }
        self.state.faults.add(fault);
    }

    /// The faults not used up yet, oldest first.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.state.faults.pending()
    }

    /// Forget the faults not used up yet.
    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Lease requests received so far (every verb).
    pub fn lease_requests(&self) -> u64 {
        self.state.counters.leases()
    }

    /// ConfigMap requests received so far (every verb).
    pub fn config_map_requests(&self) -> u64 {
        self.state.counters.config_maps()
    }

    /// Event requests received so far (every verb, both APIs).
    pub fn event_requests(&self) -> u64 {
        self.state.counters.events()
    }

    /// Requests to `/api/v1/nodes/{name}/status` received so far.
    pub fn node_status_requests(&self) -> u64 {
        self.state.counters.node_status()
    }
}
