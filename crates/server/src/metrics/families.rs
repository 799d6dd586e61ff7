//! Metric families built by hand at scrape time, for collectors that keep
//! their values compactly instead of as one `prometheus` vector child per
//! series.

use std::collections::HashMap;

use prometheus::core::Desc;
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

pub(super) fn desc(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<Desc> {
    Desc::new(
        name.to_owned(),
        help.to_owned(),
        labels.iter().map(|l| (*l).to_owned()).collect(),
        HashMap::new(),
    )
}

pub(super) fn label_pairs(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut p = LabelPair::default();
            p.set_name((*name).to_owned());
            p.set_value((*value).to_owned());
            p
        })
        .collect()
}

pub(super) fn family(d: &Desc, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(d.fq_name.clone());
    f.set_help(d.help.clone());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

pub(super) fn counter_metric(labels: Vec<LabelPair>, value: u64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    let mut m = proto::Metric::from_label(labels);
    m.set_counter(c);
    m
}

pub(super) fn gauge_metric(labels: Vec<LabelPair>, value: f64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(value);
    let mut m = proto::Metric::from_label(labels);
    m.set_gauge(g);
    m
}
