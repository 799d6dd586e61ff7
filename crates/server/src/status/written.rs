//! Nodes and their agents as [`super::write`] writes them: the fields of
//! [`netchecker_wire::NodeStatus`] and [`netchecker_wire::AgentStatus`]
//! written straight from the evaluation, keys and all, and an agent's DNS
//! answers and probes copied as [`crate::cache::Details`] rendered them when its report
//! was kept. At 10,000 agents, parsing every stored report into owned
//! strings and copying the names into an owned answer took a third of a
//! status answer; parsing them in place still took a quarter, and serde
//! escaping every one of an agent's 13 keys and building each node's
//! agents as a vector first, several percent more. The bytes are those of
//! [`super::render`]'s answer (tested: "one answer, two ways").

use netchecker_wire::state_name;
use serde::Serialize;

use crate::cache::Entry;
use crate::evaluation::{Evaluation, path_of, round_ms, round_ms_f64};

/// Append `value` as JSON. Into a vector, serialising the values written
/// here (strings, numbers, the wire's enums and figures) cannot fail.
fn json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Append node `n` of the evaluation with its agents, as
/// [`netchecker_wire::NodeStatus`] serialises.
pub(super) fn node(eval: &Evaluation<'_, Entry>, n: usize, out: &mut Vec<u8>) {
    let node = &eval.nodes[n];
    out.extend_from_slice(b"{\"node\":");
    json(out, node.name);
    out.extend_from_slice(b",\"verdict\":");
    json(out, &node.verdict);
    out.extend_from_slice(b",\"reason\":");
    json(out, &eval.reason(node));
    out.extend_from_slice(b",\"agents\":[");
    for i in node.agents.clone() {
        if i > node.agents.start {
            out.push(b',');
        }
        agent(eval, i, out);
    }
    out.push(b']');
    if let Some(path) = path_of(eval.agents_of(node), eval.minute).figures() {
        out.extend_from_slice(b",\"path\":");
        json(out, &path);
    }
    out.push(b'}');
}

/// Append agent `i` of the evaluation with the details of its stored
/// report, as [`netchecker_wire::AgentStatus`] serialises.
fn agent(eval: &Evaluation<'_, Entry>, i: usize, out: &mut Vec<u8>) {
    let facts = &eval.agents[i];
    let entry = facts.report;
    out.extend_from_slice(b"{\"name\":");
    json(out, facts.name);
    out.extend_from_slice(b",\"namespace\":");
    json(out, &facts.namespace);
    out.extend_from_slice(b",\"node\":");
    json(out, facts.node);
    out.extend_from_slice(b",\"kind\":");
    json(out, &facts.kind);
    out.extend_from_slice(b",\"state\":");
    json(out, state_name(facts.state));
    out.extend_from_slice(b",\"last_report_age_seconds\":");
    json(out, &facts.age.map(round_ms));
    out.extend_from_slice(b",\"report_interval_seconds\":");
    json(out, &facts.interval.map(|i| i.as_secs()));
    out.extend_from_slice(b",\"clock_skew_seconds\":");
    json(out, &entry.map(|e| round_ms_f64(e.skew_seconds)));
    match entry.map(Entry::status_details) {
        None => out.extend_from_slice(b",\"dns\":null,\"probes\":[]"),
        Some(d) => {
            out.extend_from_slice(b",\"dns\":{\"ok\":");
            json(out, &facts.dns_failures.is_empty());
            out.extend_from_slice(b",\"lookups\":");
            out.extend_from_slice(d.lookups().as_bytes());
            out.extend_from_slice(b"},\"probes\":");
            out.extend_from_slice(d.probes().as_bytes());
        }
    }
    out.extend_from_slice(b",\"auth\":");
    json(out, &entry.and_then(|e| e.auth));
    if let Some(path) = facts.path.and_then(|w| w.counts(eval.minute).figures()) {
        out.extend_from_slice(b",\"path\":");
        json(out, &path);
    }
    if let Some(families) = super::family_ages(eval, entry) {
        out.extend_from_slice(b",\"families\":");
        json(out, &families);
    }
    out.push(b'}');
}
