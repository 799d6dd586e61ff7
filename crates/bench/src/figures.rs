//! Number formatting shared by the tables the benchmark prints.

use hdrhistogram::Histogram;

pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn latency_cells(h: &Histogram<u64>) -> String {
    format!(
        "{:.2} | {:.2} | {:.2} | {:.2}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    )
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}
