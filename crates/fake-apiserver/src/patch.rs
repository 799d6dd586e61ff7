//! The patch formats the API accepts, applied to an object's JSON:
//!
//! - `application/merge-patch+json`: a JSON merge patch (RFC 7386): maps
//!   merge recursively, `null` removes a field, anything else (lists too)
//!   replaces.
//! - `application/strategic-merge-patch+json`: as a merge patch, except
//!   that lists the API declares with a merge key merge item by item (see
//!   [`MERGE_KEYS`](crate::patch::MERGE_KEYS)): an item whose key is new is appended, one whose key
//!   is present is merged into the present one, and one marked
//!   `"$patch": "delete"` removes it. `"$patch": "replace"` in a map
//!   replaces the map; `$setElementOrder/...` and `$retainKeys` directives
//!   are accepted and ignored.
//! - `application/apply-patch+yaml` (server-side apply): merged as a
//!   strategic merge patch. Field ownership is not tracked, so fields an
//!   apply leaves out are kept rather than removed, and there are no
//!   manager conflicts. The body must be JSON (what kube-rs sends; JSON is
//!   YAML); YAML-only syntax is refused with `415`.

use serde_json::{Map, Value};

/// Lists merged by a key in strategic merge patches and applies: the field
/// name and the key of its items (from the API's `patchMergeKey`).
pub const MERGE_KEYS: &[(&str, &str)] = &[
    // NodeStatus, PodStatus, and most other statuses.
    ("conditions", "type"),
    ("ownerReferences", "uid"),
];

/// The patch format a request's `Content-Type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchType {
    /// The format of a `Content-Type` value (parameters ignored); `None`
    /// for formats this fake does not serve (`application/json-patch+json`).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }

    /// Apply `patch` to `target` in this format.
    pub fn apply(self, target: &mut Value, patch: &Value) {
        match self {
            Self::Merge => merge(target, patch),
            Self::Strategic | Self::Apply => strategic(target, patch, None),
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(fields) = target else {
        unreachable!("target was just made an object");
    };
    for (key, value) in changes {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn merge_key(field: &str) -> Option<&'static str> {
    MERGE_KEYS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, key)| *key)
}

fn directive(value: &Value) -> Option<&str> {
    value.get("$patch").and_then(Value::as_str)
}

/// A strategic merge patch; `field` is the name under which `patch` sits.
fn strategic(target: &mut Value, patch: &Value, field: Option<&str>) {
    match patch {
        Value::Object(changes) => {
            match directive(patch) {
                Some("replace") => {
                    let mut replacement = patch.clone();
                    strip_directives(&mut replacement);
                    *target = replacement;
                    return;
                }
                Some("delete") => {
                    *target = Value::Null;
                    return;
                }
                _ => {}
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Value::Object(fields) = target else {
                unreachable!("target was just made an object");
            };
            for (key, value) in changes {
                if key.starts_with('$') {
                    continue;
                }
                if value.is_null() {
                    fields.remove(key);
                    continue;
                }
                let slot = fields.entry(key.clone()).or_insert(Value::Null);
                strategic(slot, value, Some(key));
                if slot.is_null() {
                    fields.remove(key);
                }
            }
        }
        Value::Array(items) => match field.and_then(merge_key) {
            Some(key) if target.is_array() => merge_list(target, items, key),
            _ => {
                let mut replacement = patch.clone();
                strip_directives(&mut replacement);
                *target = replacement;
            }
        },
        other => *target = other.clone(),
    }
}

/// Merge `items` into the list `target` by their `key` field.
fn merge_list(target: &mut Value, items: &[Value], key: &str) {
    let Value::Array(list) = target else {
        return;
    };
    for item in items {
        let id = item.get(key);
        let found = id.and_then(|id| list.iter().position(|x| x.get(key) == Some(id)));
        match (directive(item), found) {
            (Some("delete"), Some(at)) => {
                list.remove(at);
            }
            (Some("delete"), None) => {}
            (_, Some(at)) => strategic(&mut list[at], item, None),
            (_, None) => {
                let mut new = Value::Null;
                strategic(&mut new, item, None);
                list.push(new);
            }
        }
    }
}

/// Remove `$`-directives and `null`s from a value that replaces another.
fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            fields.retain(|k, v| !k.starts_with('$') && !v.is_null());
            fields.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> Value {
        json!({
            "metadata": {"name": "n", "labels": {"a": "1"}},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                {"type": "MemoryPressure", "status": "False"},
            ]},
        })
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(
            &mut doc,
            &json!({"a": "z", "c": {"f": null, "h": 1}, "l": [3]}),
        );
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e", "h": 1}, "l": [3]}));
        let mut doc = node();
        PatchType::Merge.apply(
            &mut doc,
            &json!({"status": {"conditions": [{"type": "X", "status": "True"}]}}),
        );
        assert_eq!(
            doc["status"]["conditions"],
            json!([{"type": "X", "status": "True"}]),
            "a merge patch replaces lists"
        );
    }

    #[test]
    fn strategic_patch_merges_conditions_by_type() {
        let mut doc = node();
        PatchType::Strategic.apply(
            &mut doc,
            &json!({"status": {
            "$setElementOrder/conditions": [{"type": "Ready"}],
            "conditions": [
                {"type": "Ready", "status": "False", "reason": null},
                {"type": "NetworkUnavailable", "status": "True"},
            ]}}),
        );
        assert_eq!(
            doc["status"]["conditions"],
            json!([
                {"type": "Ready", "status": "False"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "NetworkUnavailable", "status": "True"},
            ])
        );
        assert_eq!(doc["metadata"], node()["metadata"]);
        PatchType::Apply.apply(
            &mut doc,
            &json!({"status": {"conditions": [{"type": "MemoryPressure", "$patch": "delete"}]}}),
        );
        let types: Vec<_> = doc["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Ready", "NetworkUnavailable"]);
    }

    #[test]
    fn strategic_directives_on_maps_and_unkeyed_lists() {
        let mut doc = json!({"data": {"a": "1", "b": "2"}, "list": [1, 2]});
        PatchType::Strategic.apply(
            &mut doc,
            &json!({"data": {"$patch": "replace", "c": "3"}, "list": [3]}),
        );
        assert_eq!(doc, json!({"data": {"c": "3"}, "list": [3]}));
    }

    #[test]
    fn content_types() {
        let of = PatchType::from_content_type;
        assert_eq!(of("application/merge-patch+json"), Some(PatchType::Merge));
        assert_eq!(
            of("application/strategic-merge-patch+json; charset=utf-8"),
            Some(PatchType::Strategic)
        );
        assert_eq!(of("application/apply-patch+yaml"), Some(PatchType::Apply));
        assert_eq!(of("application/json-patch+json"), None);
        assert_eq!(of("application/json"), None);
    }
}
