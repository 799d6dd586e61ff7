//! Control routes that build objects the way [`crate::PodBuilder`] and
//! [`crate::node`] do, so a harness outside the process gets the same
//! defaults (service account, addresses, conditions) without writing a
//! whole Pod or Node by hand.

use std::net::IpAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::state::AppState;
use crate::status::error_response;
use crate::{PodBuilder, node};

/// The body of `POST /fake/build/pod`: [`PodBuilder`]'s inputs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodRequest {
    pub namespace: String,
    pub name: String,
    pub app: String,
    pub node: String,
    pub uid: Option<String>,
    pub service_account: Option<String>,
    pub host_network: Option<bool>,
    #[serde(rename = "podIPs")]
    pub pod_ips: Option<Vec<IpAddr>>,
    #[serde(rename = "hostIPs")]
    pub host_ips: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub dual_stack: bool,
    pub phase: Option<String>,
    #[serde(default)]
    pub terminating: bool,
}

impl PodRequest {
    /// The builder these inputs describe.
    pub fn builder(&self) -> PodBuilder {
        let mut b = PodBuilder::new(&self.namespace, &self.name, &self.app, &self.node);
        if let Some(uid) = &self.uid {
            b = b.uid(uid);
        }
        if let Some(sa) = &self.service_account {
            b = b.service_account(sa);
        }
        if let Some(host_network) = self.host_network {
            b = b.host_network(host_network);
        }
        if let Some(ips) = &self.pod_ips {
            b = b.pod_ips(ips.iter().copied());
        }
        if let Some(ips) = &self.host_ips {
            b = b.host_ips(ips.iter().copied());
        }
        if self.dual_stack {
            b = b.dual_stack();
        }
        if let Some(phase) = &self.phase {
            b = b.phase(phase);
        }
        if self.terminating {
            b = b.terminating();
        }
        b
    }
}

/// `ready` of [`NodeRequest`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Readiness {
    #[default]
    True,
    False,
    Unknown,
}

/// The body of `POST /fake/build/node`: [`crate::NodeBuilder`]'s inputs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRequest {
    pub name: String,
    pub uid: Option<String>,
    #[serde(default)]
    pub ready: Readiness,
    #[serde(default)]
    pub unschedulable: bool,
    #[serde(rename = "internalIPs")]
    pub internal_ips: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub dual_stack: bool,
    #[serde(default)]
    pub terminating: bool,
}

impl NodeRequest {
    /// The builder these inputs describe.
    pub fn builder(&self) -> crate::NodeBuilder {
        let mut b = node(&self.name).unschedulable(self.unschedulable);
        if let Some(uid) = &self.uid {
            b = b.uid(uid);
        }
        b = match self.ready {
            Readiness::True => b,
            Readiness::False => b.not_ready(),
            Readiness::Unknown => b.ready_unknown(),
        };
        if let Some(ips) = &self.internal_ips {
            b = b.internal_ips(ips.iter().copied());
        }
        if self.dual_stack {
            b = b.dual_stack();
        }
        if self.terminating {
            b = b.terminating();
        }
        b
    }
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|err| err.to_string())
}

/// `POST /fake/build/pod`: build an agent pod and add or replace it.
pub async fn build_pod(State(state): State<AppState>, body: Bytes) -> Response {
    match parse::<PodRequest>(&body) {
        Ok(request) => match state.pods.upsert(request.builder().build()) {
            Ok(stored) => Json(stored).into_response(),
            Err(err) => error_response(422, &err.to_string()),
        },
        Err(message) => error_response(400, &message),
    }
}

/// `POST /fake/build/node`: build a node and add or replace it.
pub async fn build_node(State(state): State<AppState>, body: Bytes) -> Response {
    match parse::<NodeRequest>(&body) {
        Ok(request) => match state.nodes.upsert(request.builder().build()) {
            Ok(stored) => Json(stored).into_response(),
            Err(err) => error_response(422, &err.to_string()),
        },
        Err(message) => error_response(400, &message),
    }
}
