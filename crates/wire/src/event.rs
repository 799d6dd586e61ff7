//! The JSON event the server POSTs to each `--webhook-url` when a node's
//! verdict changes.

use serde::{Deserialize, Serialize};

use crate::judged::{AgentKind, AgentState, NodeVerdict, state_or_unexpected};

/// A node's verdict changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub node: String,
    /// `null` for a node first seen, `pending` after a restart.
    pub old_verdict: Option<NodeVerdict>,
    pub new_verdict: NodeVerdict,
    pub reason: String,
    pub agents: Vec<EventAgent>,
    pub time: jiff::Timestamp,
    /// The change's id: the same change sent again (by a new leader after
    /// a crash, or from the unsent events it inherits) has the same id, so
    /// a receiver can drop the second. Absent from servers before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The incident this change belongs to: the `id` of the event that
    /// found the node's problem, carried by every later change of it and
    /// by the recovery that closes it; `null` for a change between verdicts
    /// that are no problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

/// One agent of the node, as judged when the event was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAgent {
    pub name: String,
    pub kind: AgentKind,
    #[serde(with = "state_or_unexpected")]
    pub state: Option<AgentState>,
    pub last_report_age_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as the server sent it before this type moved here.
    const EVENT: &str = r#"{"node":"node-1","old_verdict":"healthy","new_verdict":"unreachable","reason":"no agent on this node reports on time: ...","agents":[{"name":"netchecker-agent-x","kind":"pod_network","state":"absent","last_report_age_seconds":null},{"name":"netchecker-agent-hostnet-y","kind":"host_network","state":"outdated","last_report_age_seconds":47.125}],"time":"2026-11-21T10:00:00Z"}"#;

    #[test]
    fn an_event_round_trips_byte_for_byte() {
        let e: NodeEvent = serde_json::from_str(EVENT).unwrap();
        assert_eq!(e.old_verdict, Some(NodeVerdict::Healthy));
        assert_eq!(e.agents[1].state, Some(AgentState::Outdated));
        assert_eq!(serde_json::to_string(&e).unwrap(), EVENT);
        let first: NodeEvent = serde_json::from_str(
            &EVENT.replace(r#""old_verdict":"healthy""#, r#""old_verdict":null"#),
        )
        .unwrap();
        assert_eq!(first.old_verdict, None);
    }

    #[test]
    fn ids_are_added_without_changing_the_rest() {
        let mut e: NodeEvent = serde_json::from_str(EVENT).unwrap();
        assert_eq!((e.id.as_deref(), e.incident.as_deref()), (None, None));
        e.id = Some("1a2b-7:node-1:unreachable".into());
        e.incident = Some("1a2b-7:node-1:unreachable".into());
        let text = serde_json::to_string(&e).unwrap();
        assert!(text.starts_with(&EVENT[..EVENT.len() - 1]), "{text}");
        assert!(
            text.ends_with(
                r#","id":"1a2b-7:node-1:unreachable","incident":"1a2b-7:node-1:unreachable"}"#
            ),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<NodeEvent>(&text).unwrap(), e);
    }
}
