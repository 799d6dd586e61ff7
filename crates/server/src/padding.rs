//! A fast path past the report padding.
//!
//! Agents pad each report with `"zero_extender":[0,0,…,0]` (1500 zeros by
//! default) so that it spans several packets. The parser skips the array
//! number by number; by instruction counts that was a third of the
//! server's work per report. The padding as agents write it, exactly
//! `0(,0)*`, is cut out of the bytes before parsing instead. Anything else
//! (other numbers, whitespace, a malformed array) is left to the parser,
//! and a body the cut leaves unparsable is parsed whole, so the answer to
//! any body stays what the parser alone would give.

const KEY: &[u8] = b"\"zero_extender\":[";

/// Where the padding key first appears; whether it starts a member is
/// checked by the caller (it must follow `{` or a value and a comma).
fn find_key(body: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = body[from..].iter().position(|&b| b == b'"') {
        let at = from + at;
        if body[at..].starts_with(KEY) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The body without its padding member, when it carries the padding as
/// agents write it.
pub fn without_padding(body: &[u8]) -> Option<Vec<u8>> {
    let start = find_key(body)?;
    let rest = &body[start + KEY.len()..];
    // `0(,0)*` or nothing, checked 16 bytes at a time while it lasts.
    const PAIRS: &[u8] = b"0,0,0,0,0,0,0,0,";
    let mut i = 0;
    while rest.get(i..i + PAIRS.len()) == Some(PAIRS) {
        i += PAIRS.len();
    }
    while rest.get(i..i + 2) == Some(b"0,") {
        i += 2;
    }
    let inner = match rest.get(i..) {
        Some([b'0', b']', ..]) => i + 1,
        Some([b']', ..]) if i == 0 => 0,
        _ => return None,
    };
    let end = start + KEY.len() + inner + 1;
    // Take one separating comma with the member: the one before it, else
    // the one after it (the padding was the first member).
    // Only where the cut leaves what the member's neighbours were: after a
    // value and its comma, or first in its object.
    let before = |i: usize| i.checked_sub(1).and_then(|j| body.get(j)).copied();
    let value_end =
        |b: Option<u8>| matches!(b, Some(b'"' | b']' | b'}' | b'0'..=b'9' | b'a'..=b'z'));
    let (cut_from, cut_to) = match (before(start), body.get(end)) {
        (Some(b','), _) if value_end(before(start - 1)) => (start - 1, end),
        (Some(b'{'), Some(b',')) => (start, end + 1),
        (Some(b'{'), Some(b'}')) => (start, end),
        _ => return None,
    };
    let mut out = Vec::with_capacity(body.len() - (cut_to - cut_from));
    out.extend_from_slice(&body[..cut_from]);
    out.extend_from_slice(&body[cut_to..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(body: &str) -> Option<String> {
        without_padding(body.as_bytes()).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn the_padding_as_agents_write_it_is_cut_with_one_comma() {
        assert_eq!(
            cut(r#"{"a":1,"zero_extender":[0,0,0]}"#).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(
            cut(r#"{"zero_extender":[0,0],"a":1}"#).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(cut(r#"{"zero_extender":[0]}"#).as_deref(), Some("{}"));
        assert_eq!(
            cut(r#"{"a":1,"zero_extender":[]}"#).as_deref(),
            Some(r#"{"a":1}"#)
        );
    }

    #[test]
    fn anything_else_is_left_to_the_parser() {
        for body in [
            r#"{"a":1,"zero_extender":[0,,0]}"#,
            r#"{"a":1,"zero_extender":[0, 0]}"#,
            r#"{"a":1,"zero_extender":[1,0]}"#,
            r#"{"a":1,"zero_extender":[0,0"#,
            r#"{"a":1,"zero_extender":[0,]}"#,
            r#"{"a":1,"zero_extender":"x"}"#,
            r#"{"a":1}"#,
            r#"{,"zero_extender":[0]}"#,
            r#"{"a":1,,"zero_extender":[0]}"#,
            r#"["zero_extender":[0]]"#,
        ] {
            assert_eq!(cut(body), None, "{body}");
        }
    }

    #[test]
    fn a_go_agent_report_parses_the_same_without_its_padding() {
        let go = include_str!("../../wire/tests/fixtures/go-agent-report.json");
        let cut = without_padding(go.as_bytes()).expect("the Go agent's padding");
        assert!(cut.len() < go.len() / 2, "the padding is most of the body");
        let fast: netchecker_wire::AgentReport = serde_json::from_slice(&cut).unwrap();
        let whole: netchecker_wire::AgentReport = serde_json::from_str(go).unwrap();
        assert_eq!(fast, whole);
    }
}
