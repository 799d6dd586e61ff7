//! One series' value in the server's Prometheus text, for the test files
//! that read `/metrics`.

/// The value of `series` (its name with any labels, exactly as written) in
/// `text`; panics, showing the text, when it is not there.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("series {series} not found in\n{text}"))
        .parse()
        .unwrap()
}
