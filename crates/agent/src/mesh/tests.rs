use super::*;

#[test]
fn zeros_are_zeros_and_capped() {
    assert_eq!(zeros(0).len(), 0);
    assert!(zeros(1500).iter().all(|b| *b == 0));
    assert_eq!(zeros(1500).len(), 1500);
    assert_eq!(zeros(MAX_PROBE_PADDING + 1).len(), MAX_PROBE_PADDING);
}
