//! The `GET /api/v1/connectivity_check` response.

use serde::{Deserialize, Serialize};

/// `Message` of a failing check, word for word as the original server.
pub const MESSAGE_FAILED: &str =
    "Connectivity check fails. Reason: there are absent or outdated pods; look up the payload";

/// `Message` of a healthy check for `count` expected pods.
pub fn healthy_message(count: usize) -> String {
    format!("All {count} pods successfully reported back to the server")
}

/// Body of the connectivity check; keys are capitalised as the original's.
///
/// `Absent` and `Outdated` are always sorted and always present (`[]` when
/// empty; the original emitted `null`, which every known client treats alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResponse {
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Absent", default, deserialize_with = "null_as_empty")]
    pub absent: Vec<String>,
    #[serde(rename = "Outdated", default, deserialize_with = "null_as_empty")]
    pub outdated: Vec<String>,
}

impl CheckResponse {
    /// Build the response from the sorted absent and outdated lists and the
    /// number of expected pods.
    pub fn new(expected: usize, absent: Vec<String>, outdated: Vec<String>) -> Self {
        let message = if absent.is_empty() && outdated.is_empty() {
            healthy_message(expected)
        } else {
            MESSAGE_FAILED.to_owned()
        };
        Self {
            message,
            absent,
            outdated,
        }
    }

    /// True when no pod is absent or outdated (answered with 200).
    pub fn is_healthy(&self) -> bool {
        self.absent.is_empty() && self.outdated.is_empty()
    }
}

/// The original server wrote `null` for empty lists; accept it when reading.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_body_is_byte_exact() {
        let r = CheckResponse::new(4, vec![], vec![]);
        assert!(r.is_healthy());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"Message":"All 4 pods successfully reported back to the server","Absent":[],"Outdated":[]}"#
        );
    }

    #[test]
    fn failing_body_is_byte_exact() {
        let r = CheckResponse::new(
            2,
            vec!["netchecker-agent-hostnet-abcde".into()],
            vec!["netchecker-agent-x7k2p".into()],
        );
        assert!(!r.is_healthy());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"Message":"Connectivity check fails. Reason: there are absent or outdated pods; look up the payload","Absent":["netchecker-agent-hostnet-abcde"],"Outdated":["netchecker-agent-x7k2p"]}"#
        );
    }

    #[test]
    fn reads_the_original_null_lists() {
        let r: CheckResponse =
            serde_json::from_str(r#"{"Message":"m","Absent":null,"Outdated":["a"]}"#).unwrap();
        assert!(r.absent.is_empty());
        assert_eq!(r.outdated, vec!["a"]);
    }
}
