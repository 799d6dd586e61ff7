//! Label and field selectors as the Kubernetes API accepts them in the
//! `labelSelector` and `fieldSelector` query parameters.
//!
//! Label selectors support the full string grammar clients send: equality
//! (`a=b`, `a==b`, `a!=b`), sets (`a in (x,y)`, `a notin (x,y)`), existence
//! (`a`, `!a`), joined by commas (all must hold). Field selectors support the
//! equality forms on the pod fields the real API indexes; unknown fields are
//! ignored so that a client's field selector never makes a request fail.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Pod;

/// A selector string that does not follow the label selector grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {message} (in {selector:?})")]
pub struct SelectorError {
    selector: String,
    message: String,
}

/// One requirement of a label selector; a pod matches when all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value`: also true when the label is absent.
    NotEquals(String, String),
    /// `key in (a,b)`: the label is present with one of the values.
    In(String, BTreeSet<String>),
    /// `key notin (a,b)`: also true when the label is absent.
    NotIn(String, BTreeSet<String>),
    /// `key`: the label is present.
    Exists(String),
    /// `!key`: the label is absent.
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Equals(k, v) => labels.get(k) == Some(v),
            Self::NotEquals(k, v) => labels.get(k) != Some(v),
            Self::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Self::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            Self::Exists(k) => labels.contains_key(k),
            Self::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parse the string form used in `labelSelector=`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        Parser::new(selector).parse()
    }

    /// The requirements, in the order they were written.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether a pod's labels satisfy every requirement.
    pub fn matches_pod(&self, pod: &Pod) -> bool {
        match &pod.metadata.labels {
            Some(labels) => self.matches(labels),
            None => self.matches(&BTreeMap::new()),
        }
    }
}

/// Characters allowed in label keys (`prefix/name`) and values.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')
}

/// A small hand-written scanner: commas separate requirements except inside
/// the parentheses of a set, so splitting the string on commas is not enough.
struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Self { input, pos: 0 }
    }

    fn error(&self, message: impl Into<String>) -> SelectorError {
        SelectorError {
            selector: self.input.to_owned(),
            message: message.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn key(&mut self) -> Result<String, SelectorError> {
        self.skip_ws();
        let key = self.word();
        if key.is_empty() {
            return Err(self.error(format!("expected a label key at offset {}", self.pos)));
        }
        Ok(key.to_owned())
    }

    fn at_end_of_requirement(&mut self) -> bool {
        self.skip_ws();
        self.rest().is_empty() || self.rest().starts_with(',')
    }

    fn parse(mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        self.skip_ws();
        if self.rest().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(self.requirement()?);
            self.skip_ws();
            if self.rest().is_empty() {
                return Ok(LabelSelector { requirements });
            }
            if !self.eat(",") {
                return Err(self.error(format!("expected ',' at offset {}", self.pos)));
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        self.skip_ws();
        if self.eat("!") {
            let key = self.key()?;
            if !self.at_end_of_requirement() {
                return Err(self.error(format!("unexpected text after '!{key}'")));
            }
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.key()?;
        if self.at_end_of_requirement() {
            return Ok(Requirement::Exists(key));
        }
        if self.eat("!=") {
            return Ok(Requirement::NotEquals(key, self.value()?));
        }
        if self.eat("==") || self.eat("=") {
            return Ok(Requirement::Equals(key, self.value()?));
        }
        match self.word() {
            "in" => Ok(Requirement::In(key, self.set()?)),
            "notin" => Ok(Requirement::NotIn(key, self.set()?)),
            other => Err(self.error(format!("unknown operator {other:?} after key {key:?}"))),
        }
    }

    /// A value after `=`, `==` or `!=`; may be empty (`a=` matches `a: ""`).
    fn value(&mut self) -> Result<String, SelectorError> {
        self.skip_ws();
        let value = self.word().to_owned();
        if !self.at_end_of_requirement() {
            return Err(self.error(format!("invalid value at offset {}", self.pos)));
        }
        Ok(value)
    }

    /// `(a, b, c)` after `in` or `notin`; must not be empty.
    fn set(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        self.skip_ws();
        if !self.eat("(") {
            return Err(self.error("expected '(' after set operator"));
        }
        let mut values = BTreeSet::new();
        loop {
            self.skip_ws();
            let value = self.word();
            values.insert(value.to_owned());
            self.skip_ws();
            if self.eat(")") {
                break;
            }
            if !self.eat(",") {
                return Err(self.error(format!("expected ',' or ')' at offset {}", self.pos)));
            }
        }
        if values.iter().all(String::is_empty) {
            return Err(self.error("for 'in' and 'notin' the set of values must not be empty"));
        }
        Ok(values)
    }
}

/// A field selector on pods. Only the equality forms exist for fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// `(field, value, negated)` for the fields this server knows.
    terms: Vec<(String, String, bool)>,
}

/// Pod fields the real API supports in field selectors.
const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

impl FieldSelector {
    /// Parse leniently: terms on unknown fields or in unknown forms are
    /// dropped (logged), never an error.
    pub fn parse_lenient(selector: &str) -> Self {
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
                Some((k, v, negated)) if POD_FIELDS.contains(&k.trim()) => {
                    terms.push((k.trim().to_owned(), v.trim().to_owned(), negated));
                }
                _ => tracing::warn!(term, "ignoring unsupported field selector term"),
            }
        }
        Self { terms }
    }

    /// Whether the pod satisfies every supported term.
    pub fn matches_pod(&self, pod: &Pod) -> bool {
        self.terms.iter().all(|(field, value, negated)| {
            let actual = pod_field(pod, field);
            (actual.as_deref().unwrap_or("") == value) != *negated
        })
    }
}

fn pod_field(pod: &Pod, field: &str) -> Option<String> {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    match field {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "spec.nodeName" => spec?.node_name.clone(),
        "spec.restartPolicy" => spec?.restart_policy.clone(),
        "spec.schedulerName" => spec?.scheduler_name.clone(),
        "spec.serviceAccountName" => spec?.service_account_name.clone(),
        "spec.hostNetwork" => Some(spec?.host_network.unwrap_or(false).to_string()),
        "status.phase" => status?.phase.clone(),
        "status.podIP" => status?.pod_ip.clone(),
        "status.nominatedNodeName" => status?.nominated_node_name.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn set(values: &[&str]) -> BTreeSet<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn parses_every_operator() {
        let sel = LabelSelector::parse(
            "a=1, b==2,c!=3, d in (x, y), e notin (z),f,!g,example.com/h in(k)",
        )
        .unwrap();
        assert_eq!(
            sel.requirements(),
            &[
                Requirement::Equals("a".into(), "1".into()),
                Requirement::Equals("b".into(), "2".into()),
                Requirement::NotEquals("c".into(), "3".into()),
                Requirement::In("d".into(), set(&["x", "y"])),
                Requirement::NotIn("e".into(), set(&["z"])),
                Requirement::Exists("f".into()),
                Requirement::DoesNotExist("g".into()),
                Requirement::In("example.com/h".into(), set(&["k"])),
            ]
        );
    }

    #[test]
    fn empty_selector_matches_everything() {
        let sel = LabelSelector::parse("  ").unwrap();
        assert!(sel.requirements().is_empty());
        assert!(sel.matches(&labels(&[])));
        assert!(sel.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn equality_and_inequality() {
        let sel = LabelSelector::parse("app=agent").unwrap();
        assert!(sel.matches(&labels(&[("app", "agent"), ("x", "y")])));
        assert!(!sel.matches(&labels(&[("app", "other")])));
        assert!(!sel.matches(&labels(&[])));

        let sel = LabelSelector::parse("app!=agent").unwrap();
        assert!(!sel.matches(&labels(&[("app", "agent")])));
        assert!(sel.matches(&labels(&[("app", "other")])));
        assert!(
            sel.matches(&labels(&[])),
            "!= holds when the label is absent"
        );
    }

    #[test]
    fn empty_value_is_allowed() {
        let sel = LabelSelector::parse("a=").unwrap();
        assert!(sel.matches(&labels(&[("a", "")])));
        assert!(!sel.matches(&labels(&[("a", "x")])));
    }

    #[test]
    fn set_based() {
        let sel =
            LabelSelector::parse("app in (netchecker-agent,netchecker-agent-hostnet)").unwrap();
        assert!(sel.matches(&labels(&[("app", "netchecker-agent")])));
        assert!(sel.matches(&labels(&[("app", "netchecker-agent-hostnet")])));
        assert!(!sel.matches(&labels(&[("app", "netchecker-server")])));
        assert!(!sel.matches(&labels(&[])));

        let sel = LabelSelector::parse("tier notin (db, cache)").unwrap();
        assert!(!sel.matches(&labels(&[("tier", "db")])));
        assert!(sel.matches(&labels(&[("tier", "web")])));
        assert!(
            sel.matches(&labels(&[])),
            "notin holds when the label is absent"
        );
    }

    #[test]
    fn existence() {
        let sel = LabelSelector::parse("a,!b").unwrap();
        assert!(sel.matches(&labels(&[("a", "")])));
        assert!(!sel.matches(&labels(&[("a", "1"), ("b", "2")])));
        assert!(!sel.matches(&labels(&[("c", "1")])));
    }

    #[test]
    fn conjunction_requires_all() {
        let sel = LabelSelector::parse("app=agent,zone in (a,b),!legacy").unwrap();
        assert!(sel.matches(&labels(&[("app", "agent"), ("zone", "a")])));
        assert!(!sel.matches(&labels(&[("app", "agent"), ("zone", "c")])));
        assert!(!sel.matches(&labels(&[("app", "agent"), ("zone", "a"), ("legacy", "")])));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "a in ()",
            "a in (x",
            "a in x",
            "a between (x)",
            "a=b c",
            "=b",
            "a,,b",
            "a,",
            "!",
            "!a=b",
            "a=(b)",
            "a in (x) y",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn error_names_the_selector() {
        let err = LabelSelector::parse("a in x").unwrap_err();
        assert!(err.to_string().contains("a in x"), "{err}");
    }

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
}
