//! Label selectors as the Kubernetes API accepts them in the
//! `labelSelector` query parameter: equality (`a=b`, `a==b`, `a!=b`), sets
//! (`a in (x,y)`, `a notin (x,y)`), existence (`a`, `!a`), joined by commas
//! (all must hold).

use std::collections::{BTreeMap, BTreeSet};

use crate::object::Object;

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

    /// Whether an object's labels satisfy every requirement.
    pub fn matches_object<T: Object>(&self, object: &T) -> bool {
        match &object.metadata().labels {
            Some(labels) => self.matches(labels),
            None => self.matches(&BTreeMap::new()),
        }
    }

    /// Whether a pod's labels satisfy every requirement.
    pub fn matches_pod(&self, pod: &k8s_openapi::api::core::v1::Pod) -> bool {
        self.matches_object(pod)
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
}
