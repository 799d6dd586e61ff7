//! Label and field selectors as the Kubernetes API accepts them in the
//! `labelSelector` and `fieldSelector` query parameters.
//!
//! Label selectors support the full string grammar clients send; field
//! selectors support the equality forms on the fields the real API indexes
//! for each resource, and ignore the rest.

mod field;
mod label;

pub use field::FieldSelector;
pub use label::{LabelSelector, Requirement, SelectorError};
