//! Wire types shared by `netchecker-server` and `netchecker-agent`.
//!
//! The v1 types serialise to exactly the JSON the original Go
//! k8s-netchecker put on the wire (see `doc/api.md`): snake_case report keys,
//! PascalCase probe and check-response keys, RFC 3339 times with nanoseconds.
//! Unknown fields are accepted and ignored when parsing, in both directions.
//! The newer answers (`/api/v2/status`, webhook events) are here too, so the
//! server, its tests and any client read them with the same types.

mod attempts;
mod check;
mod event;
mod judged;
pub mod mesh;
mod report;
mod status;

pub use attempts::{AttemptCounts, ReportAttempts};
pub use check::{CheckResponse, MESSAGE_FAILED, healthy_message};
pub use event::{EventAgent, NodeEvent};
pub use judged::{AgentKind, AgentState, IpFamily, NodeVerdict, UNEXPECTED, state_name};
pub use report::{
    AgentReport, FamilyProbe, HostDate, InvalidHostDate, OutgoingReport, ProbeResult, StoredReport,
};
pub use status::{
    AgentStatus, AuthResult, Dns, FamilyAges, Membership, MeshFailingPair, MeshMatrix, MeshNetwork,
    MeshNetworkStatus, MeshNode, MeshNodeNetwork, MeshPathFigures, MeshStatus, MeshVerdict,
    NodeStatus, PairKind, PathFigures, PodViewSource, PodViewStatus, Probe, Spread, Status,
    Summary,
};

/// Path prefix under which the server receives and serves agent reports.
pub const AGENTS_PATH: &str = "/api/v1/agents";
/// Path agents probe to measure the server path.
pub const PING_PATH: &str = "/api/v1/ping";
/// Path of the connectivity check.
pub const CHECK_PATH: &str = "/api/v1/connectivity_check";
/// Text of the 404 answer for an unknown agent, word for word as the original.
pub const NO_SUCH_AGENT: &str = "There is no such entry in the agent cache";
