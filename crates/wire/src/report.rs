//! Agent reports: what an agent POSTs and what the server stores and serves.
//!
//! The JSON keys and their order are the original Go agent's. Parsing is
//! lenient where the Go encoder was loose (`null` for empty maps and lists,
//! missing fields from older agents) and strict where a value would be
//! meaningless (a `hostdate` that is not RFC 3339).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Host name or interface name mapped to addresses.
pub type AddressMap = BTreeMap<String, Vec<String>>;

/// One agent report, without the `zero_extender` padding.
///
/// The padding is not a field: serde skips unknown keys with `IgnoredAny`,
/// so the server parses past the zeros without allocating anything for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self")]
pub struct AgentReport {
    /// Seconds between two reports of this agent.
    #[serde(default)]
    pub report_interval: u64,
    #[serde(default)]
    pub nodename: String,
    #[serde(default)]
    pub podname: String,
    /// The agent's clock; reported, never trusted for freshness.
    #[serde(default)]
    pub hostdate: HostDate,
    /// Host uptime in whole seconds.
    #[serde(default, deserialize_with = "lenient_seconds")]
    pub uptime: u64,
    /// The server host name mapped to the addresses it resolved to.
    #[serde(default, deserialize_with = "nullable_address_map")]
    pub nslookup: AddressMap,
    /// Interface name mapped to its addresses in CIDR form.
    #[serde(default, deserialize_with = "nullable_address_map")]
    pub ips: AddressMap,
    #[serde(default, deserialize_with = "nullable_probes")]
    pub network_probes: Vec<ProbeResult>,
    /// The node-to-node mesh: on which port this agent answers probes and
    /// how its last probes went (our agents only, when the mesh is on; the
    /// original server ignores the field, our server stores it apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<crate::mesh::MeshReport>,
    /// How the agent's previous report got through (our agents only; the
    /// original server ignores the field, our server takes it out before
    /// storing the report and keeps only its figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_attempts: Option<crate::ReportAttempts>,
    /// The probes again, one per IP family, for each probed name that
    /// resolved to addresses of both (our agents only, on dual-stack; the
    /// original server ignores the field, our server takes it out before
    /// storing the report and keeps only what fails).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub family_probes: Vec<FamilyProbe>,
}

/// One probe over one IP family. The `network_probes` entry of the same
/// URL says whether the name answered over any family (as a client that
/// tries each address would see it); these say which family fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyProbe {
    pub family: crate::IpFamily,
    /// The address probed (the first of its family the name resolved to).
    pub address: String,
    pub probe: ProbeResult,
}

/// Result of one HTTP probe; keys are PascalCase, times in whole milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "PascalCase", default)]
pub struct ProbeResult {
    #[serde(rename = "URL")]
    pub url: String,
    /// 1 when a TCP connection was established, else 0.
    pub connection_result: i64,
    /// HTTP status code, 0 when there was no HTTP response.
    #[serde(rename = "HTTPCode")]
    pub http_code: i64,
    pub total: i64,
    pub content_transfer: i64,
    #[serde(rename = "TCPConnection")]
    pub tcp_connection: i64,
    #[serde(rename = "DNSLookup")]
    pub dns_lookup: i64,
    pub connect: i64,
    pub server_processing: i64,
}

// serde's derive also reads a struct from a JSON array (`[15, "node-1"]`);
// a report and a probe are JSON objects only, as the original's.
impl Serialize for AgentReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AgentReport::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for AgentReport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AgentReport::deserialize(ObjectOnly(d))
    }
}

impl Serialize for ProbeResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ProbeResult::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for ProbeResult {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ProbeResult::deserialize(ObjectOnly(d))
    }
}

/// A deserializer that reads a struct from a map only, never from a sequence.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(v)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(v)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// What an agent puts on the wire: the report, our agents' optional
/// `report_attempts` (absent unless set), then `zero_extender`, exactly
/// `padding` zeros, written without materialising a vector.
///
/// `report_attempts` is set here, per server the report goes to (each
/// gets its own counts), not in the shared [`AgentReport`], whose field of
/// that name is what a server parses: the original server skips the key
/// like any unknown one; ours reads it and takes it out before storing,
/// so the report it stores and serves keeps the original's shape.
#[derive(Debug, Serialize)]
pub struct OutgoingReport<'a> {
    #[serde(flatten)]
    pub report: &'a AgentReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_attempts: Option<&'a crate::ReportAttempts>,
    pub zero_extender: Zeros,
}

impl<'a> OutgoingReport<'a> {
    pub fn new(report: &'a AgentReport, padding: usize) -> Self {
        Self {
            report,
            report_attempts: None,
            zero_extender: Zeros(padding),
        }
    }

    /// The same, with `report_attempts` (left out when `None`).
    pub fn with_attempts(mut self, attempts: Option<&'a crate::ReportAttempts>) -> Self {
        self.report_attempts = attempts;
        self
    }
}

/// A JSON array of `n` zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zeros(pub usize);

impl Serialize for Zeros {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0))?;
        for _ in 0..self.0 {
            seq.serialize_element(&0u8)?;
        }
        seq.end()
    }
}

/// A report as the server stores and serves it: the report plus the
/// server's own receive time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReport {
    #[serde(flatten)]
    pub report: AgentReport,
    /// When the server received the report (server clock, RFC 3339).
    pub last_updated: jiff::Timestamp,
}

/// An RFC 3339 time with any offset and up to nanoseconds, kept verbatim so
/// that the agent's own rendering (and offset) reaches readers unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDate {
    text: String,
    at: jiff::Timestamp,
}

impl HostDate {
    /// The instant this date denotes.
    pub fn timestamp(&self) -> jiff::Timestamp {
        self.at
    }

    /// The text as the agent sent it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Render a timestamp with nanoseconds in UTC, parseable by Go's `time`.
    pub fn from_timestamp(at: jiff::Timestamp) -> Self {
        Self {
            text: format!("{at:.9}"),
            at,
        }
    }
}

impl Default for HostDate {
    /// Go's zero `time.Time`, which is what a Go agent sends for an unset date.
    fn default() -> Self {
        "0001-01-01T00:00:00Z"
            .parse()
            .expect("Go's zero time is valid RFC 3339")
    }
}

/// A `hostdate` that is not an RFC 3339 time with an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHostDate(String);

impl fmt::Display for InvalidHostDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hostdate is not an RFC 3339 time: {}", self.0)
    }
}

impl std::error::Error for InvalidHostDate {}

impl FromStr for HostDate {
    type Err = InvalidHostDate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // jiff also reads ISO 8601 forms that are not RFC 3339 (no seconds,
        // a space for `T`, `+0000`, `[UTC]`); the date is served verbatim,
        // so only RFC 3339 gets in.
        if !is_rfc3339(s) {
            return Err(InvalidHostDate(format!(
                "{s:?} is not of the form YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"
            )));
        }
        let at = jiff::Timestamp::from_str(s).map_err(|e| InvalidHostDate(e.to_string()))?;
        Ok(Self {
            text: s.to_owned(),
            at,
        })
    }
}

/// RFC 3339 `date-time` syntax: `YYYY-MM-DDTHH:MM:SS[.fraction]` and `Z`
/// or a `+HH:MM`/`-HH:MM` offset (`T` and `Z` in either case).
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize, to: usize| {
        b.get(from..to)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let shape = digits(0, 4)
        && at(4, b'-')
        && digits(5, 7)
        && at(7, b'-')
        && digits(8, 10)
        && matches!(b.get(10), Some(b'T' | b't'))
        && digits(11, 13)
        && at(13, b':')
        && digits(14, 16)
        && at(16, b':')
        && digits(17, 19);
    if !shape {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()),
        _ => false,
    }
}

impl fmt::Display for HostDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for HostDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for HostDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go marshals a nil map as `null` and a failed lookup's nil slice as `null`.
///
/// Lists are trimmed to their length: a server keeps one report per agent,
/// and a vector grown while parsing holds up to twice the room it needs.
fn nullable_address_map<'de, D: Deserializer<'de>>(d: D) -> Result<AddressMap, D::Error> {
    let raw = Option::<BTreeMap<String, Option<Vec<String>>>>::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let mut v = v.unwrap_or_default();
            v.shrink_to_fit();
            (k, v)
        })
        .collect())
}

/// Probe results, `null` read as none, trimmed to their length.
fn nullable_probes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ProbeResult>, D::Error> {
    let mut v: Vec<ProbeResult> = null_as_default(d)?;
    v.shrink_to_fit();
    Ok(v)
}

/// Whole seconds from any JSON number: older agents sent a float.
fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number of seconds")
        }
        fn visit_u64<E>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E>(self, v: i64) -> Result<u64, E> {
            Ok(v.max(0) as u64)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            if v.is_finite() {
                Ok(v.max(0.0) as u64)
            } else {
                Err(E::custom("uptime is not a finite number"))
            }
        }
        fn visit_unit<E>(self) -> Result<u64, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests;
