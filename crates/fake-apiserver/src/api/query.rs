//! The query parameters of a LIST or WATCH, as kube-runtime's watcher and
//! the kube client send them, and what they ask for: a page of a LIST or
//! the start, timeout and bookmarks of a WATCH.

use std::time::Duration;

use crate::status::ApiError;
use crate::watch::{WatchOptions, WatchStart};

/// The real API server's default when a watch gives no `timeoutSeconds`
/// (the low end of its randomised 30 to 60 minute window).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The query parameters of a LIST or WATCH. Parsed from raw pairs so
/// unknown or repeated parameters never make a request fail (last wins).
#[derive(Debug, Default)]
pub(crate) struct ListQuery {
    pub(crate) watch: bool,
    pub(crate) label_selector: Option<String>,
    pub(crate) field_selector: Option<String>,
    resource_version: Option<String>,
    resource_version_match: Option<String>,
    timeout_seconds: Option<String>,
    allow_watch_bookmarks: bool,
    send_initial_events: Option<bool>,
    limit: Option<String>,
    continue_token: Option<String>,
}

fn truthy(value: &str) -> bool {
    matches!(value, "true" | "1" | "True" | "TRUE")
}

impl ListQuery {
    pub(crate) fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut q = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "watch" => q.watch = truthy(&value),
                "labelSelector" => q.label_selector = Some(value),
                "fieldSelector" => q.field_selector = Some(value),
                "resourceVersion" => q.resource_version = Some(value),
                "resourceVersionMatch" => q.resource_version_match = Some(value),
                "timeoutSeconds" => q.timeout_seconds = Some(value),
                "allowWatchBookmarks" => q.allow_watch_bookmarks = truthy(&value),
                "sendInitialEvents" => q.send_initial_events = Some(truthy(&value)),
                "limit" => q.limit = Some(value),
                "continue" => q.continue_token = Some(value),
                // pretty, ...: ignored.
                _ => {}
            }
        }
        q
    }

    /// `resourceVersion` as a number; `None` when absent or empty.
    pub(crate) fn resource_version(&self) -> Result<Option<u64>, ApiError> {
        match self.resource_version.as_deref() {
            None | Some("") => Ok(None),
            Some(rv) => rv
                .parse()
                .map(Some)
                .map_err(|_| ApiError::new(400, format!("invalid resource version {rv:?}"))),
        }
    }

    pub(crate) fn watch_options(&self) -> Result<WatchOptions, ApiError> {
        let rv = self.resource_version()?;
        let send_initial_events = self.send_initial_events == Some(true);
        if send_initial_events && self.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::new(
                422,
                "sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan",
            ));
        }
        // Without an explicit choice, a watch from "no version" or "any
        // version" (0) starts with synthetic ADDED events for every object,
        // as the real API does.
        let initial = self
            .send_initial_events
            .unwrap_or(matches!(rv, None | Some(0)));
        let start = if initial {
            WatchStart::InitialEvents {
                end_bookmark: send_initial_events,
            }
        } else {
            WatchStart::After(rv.unwrap_or(0))
        };
        let timeout = match self.timeout_seconds.as_deref().map(str::parse::<u64>) {
            None | Some(Ok(0)) => DEFAULT_WATCH_TIMEOUT,
            Some(Ok(secs)) => Duration::from_secs(secs),
            Some(Err(_)) => {
                return Err(ApiError::new(400, "timeoutSeconds must be a number"));
            }
        };
        Ok(WatchOptions {
            start,
            timeout,
            bookmarks: self.allow_watch_bookmarks,
        })
    }
}

/// Which part of a LIST to answer: as the real API, `limit` objects per
/// page and a `continue` token for the rest (here `<resourceVersion>:<offset>`:
/// the pages after the first keep the first page's version).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) limit: Option<usize>,
    pub(crate) offset: usize,
    pub(crate) resource_version: Option<u64>,
}

impl Page {
    pub(crate) fn of(query: &ListQuery) -> Result<Self, ApiError> {
        let limit = match query.limit.as_deref() {
            None | Some("") | Some("0") => None,
            Some(n) => Some(
                n.parse::<usize>()
                    .map_err(|_| ApiError::new(400, format!("invalid limit {n:?}")))?,
            ),
        };
        let (resource_version, offset) = match query.continue_token.as_deref() {
            None | Some("") => (None, 0),
            Some(token) => {
                let parsed = token
                    .split_once(':')
                    .and_then(|(rv, off)| Some((rv.parse().ok()?, off.parse().ok()?)));
                match parsed {
                    Some((rv, off)) => (Some(rv), off),
                    None => {
                        return Err(ApiError::new(
                            400,
                            format!("invalid continue token {token:?}"),
                        ));
                    }
                }
            }
        };
        Ok(Self {
            limit,
            offset,
            resource_version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ListQuery {
        ListQuery::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn pages_and_continue_tokens() {
        let page = Page::of(&query(&[("limit", "3"), ("continue", "7:6")])).unwrap();
        assert_eq!(
            page,
            Page {
                limit: Some(3),
                offset: 6,
                resource_version: Some(7)
            }
        );
        assert_eq!(Page::of(&query(&[("limit", "0")])).unwrap().limit, None);
        assert!(Page::of(&query(&[("continue", "x")])).is_err());
        assert!(Page::of(&query(&[("limit", "-1")])).is_err());
    }

    #[test]
    fn watch_starts() {
        let start = |pairs: &[(&str, &str)]| query(pairs).watch_options().map(|o| o.start);
        assert_eq!(
            start(&[]),
            Ok(WatchStart::InitialEvents {
                end_bookmark: false
            })
        );
        assert_eq!(start(&[("resourceVersion", "5")]), Ok(WatchStart::After(5)));
        assert_eq!(
            start(&[
                ("sendInitialEvents", "true"),
                ("resourceVersionMatch", "NotOlderThan")
            ]),
            Ok(WatchStart::InitialEvents { end_bookmark: true })
        );
        assert!(start(&[("sendInitialEvents", "true")]).is_err());
    }
}
