//! Field selectors as the Kubernetes API accepts them in the
//! `fieldSelector` query parameter: only the equality forms (`f=v`, `f==v`,
//! `f!=v`, comma-joined), only on the fields the real API indexes for the
//! resource (see [`Object::FIELDS`]). Terms on other fields are ignored, so
//! that a client's field selector never makes a request fail.

use k8s_openapi::api::core::v1::Pod;

use crate::object::Object;

/// A parsed field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// `(field, value, negated)` for the fields this server knows.
    terms: Vec<(String, String, bool)>,
}

impl FieldSelector {
    /// Parse a selector on pods leniently (see [`Self::parse_for`]).
    pub fn parse_lenient(selector: &str) -> Self {
        Self::parse_for(selector, Pod::FIELDS)
    }

    /// Parse leniently for a resource whose selectable fields are `known`:
    /// terms on other fields or in unknown forms are dropped (logged),
    /// never an error.
    pub fn parse_for(selector: &str, known: &[&str]) -> Self {
        let mut terms = Vec::new();
        for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                Some((k, v, true))
            } else if let Some((k, v)) = term.split_once("==") {
                Some((k, v, false))
            } else {
                term.split_once('=').map(|(k, v)| (k, v, false))
            };
            match parsed {
                Some((k, v, negated)) if known.contains(&k.trim()) => {
                    terms.push((k.trim().to_owned(), v.trim().to_owned(), negated));
                }
                _ => tracing::warn!(term, "ignoring unsupported field selector term"),
            }
        }
        Self { terms }
    }

    /// Whether the object satisfies every supported term.
    pub fn matches<T: Object>(&self, object: &T) -> bool {
        self.terms.iter().all(|(field, value, negated)| {
            let actual = object.field(field);
            (actual.as_deref().unwrap_or("") == value) != *negated
        })
    }

    /// Whether the pod satisfies every supported term.
    pub fn matches_pod(&self, pod: &Pod) -> bool {
        self.matches(pod)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selector_on_pod_fields() {
        let mut pod = crate::agent_pod("ns1", "p1", "agent", "node-a");
        let sel = FieldSelector::parse_lenient("spec.nodeName=node-a,metadata.namespace==ns1");
        assert!(sel.matches_pod(&pod));
        let sel = FieldSelector::parse_lenient("status.phase!=Running");
        assert!(!sel.matches_pod(&pod));
        pod.status = None;
        assert!(sel.matches_pod(&pod));
        let sel = FieldSelector::parse_lenient("metadata.name=other");
        assert!(!sel.matches_pod(&pod));
    }

    #[test]
    fn field_selector_ignores_what_it_does_not_know() {
        let pod = crate::agent_pod("ns1", "p1", "agent", "node-a");
        let sel = FieldSelector::parse_lenient("spec.unknown=x,garbage,metadata.name=p1");
        assert!(sel.matches_pod(&pod));
    }

    #[test]
    fn field_selector_on_node_fields() {
        use k8s_openapi::api::core::v1::Node;
        let node: Node = crate::node("node-a").unschedulable(true).build();
        let sel = FieldSelector::parse_for("spec.unschedulable=true", Node::FIELDS);
        assert!(sel.matches(&node));
        let sel = FieldSelector::parse_for("metadata.name!=node-a", Node::FIELDS);
        assert!(!sel.matches(&node));
        // A pod field means nothing to nodes: ignored.
        let sel = FieldSelector::parse_for("spec.nodeName=x", Node::FIELDS);
        assert!(sel.matches(&node));
    }
}
