//! Docker's `filters` query parameter: parsing both encodings, checking keys, and the matching
//! rules of `GET /networks` and `POST /networks/prune`.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use super::error::{Error, Result};
use crate::model::{Network, PREDEFINED_NAMES};

/// Filter key → the set of values given for it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, BTreeSet<String>>);

impl Filters {
    /// Parses `{"key":{"value":true}}` (current) or `{"key":["value"]}` (legacy). Empty text and
    /// `null` mean no filter, and a `null` value no value, as Go decodes them for Docker.
    pub fn parse(text: &str) -> Result<Filters> {
        if text.trim().is_empty() {
            return Ok(Filters::default());
        }
        let invalid = || Error::InvalidParameter("invalid filter".to_string());
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| invalid())?;
        let map = match value {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => return Ok(Filters::default()),
            _ => return Err(invalid()),
        };
        let mut out = BTreeMap::new();
        for (key, values) in map {
            let set: BTreeSet<String> = match values {
                serde_json::Value::Object(m) => m
                    .into_iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(v, _)| v)
                    .collect(),
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        serde_json::Value::String(s) => Ok(s),
                        _ => Err(invalid()),
                    })
                    .collect::<Result<_>>()?,
                serde_json::Value::Null => BTreeSet::new(),
                _ => return Err(invalid()),
            };
            out.insert(key, set);
        }
        Ok(Filters(out))
    }

    /// Refuses keys outside `allowed`, with Docker's text.
    pub fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(Error::InvalidParameter(format!("invalid filter '{k}'"))),
            None => Ok(()),
        }
    }

    pub fn get(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.0.get(key).filter(|s| !s.is_empty())
    }
}

/// The keys `GET /networks` accepts.
pub const LIST_KEYS: [&str; 7] = ["dangling", "driver", "id", "label", "name", "scope", "type"];
/// The keys `POST /networks/prune` accepts.
pub const PRUNE_KEYS: [&str; 3] = ["label", "label!", "until"];

/// A validated list filter, ready to test networks against.
pub struct NetworkFilter {
    filters: Filters,
    names: Vec<Option<Regex>>,
    ids: Vec<Option<Regex>>,
    dangling: Option<bool>,
}

impl NetworkFilter {
    pub fn new(filters: Filters) -> Result<NetworkFilter> {
        filters.check_keys(&LIST_KEYS)?;
        if let Some(types) = filters.get("type") {
            if let Some(bad) = types.iter().find(|t| *t != "custom" && *t != "builtin") {
                return Err(Error::InvalidParameter(format!(
                    "invalid filter: 'type'='{bad}'"
                )));
            }
        }
        let dangling = match filters.get("dangling") {
            None => None,
            Some(values) if values.len() > 1 => {
                return Err(Error::InvalidParameter(
                    "got more than one value for filter key \"dangling\"".to_string(),
                ));
            }
            Some(values) => match values.iter().next().map(String::as_str) {
                Some("true" | "1") => Some(true),
                Some("false" | "0") => Some(false),
                _ => {
                    return Err(Error::InvalidParameter(
                        "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")"
                            .to_string(),
                    ));
                }
            },
        };
        // An invalid regular expression simply matches nothing (exact equality still applies).
        let compile = |key: &str| -> Vec<Option<Regex>> {
            filters
                .get(key)
                .map(|vs| vs.iter().map(|v| Regex::new(v).ok()).collect())
                .unwrap_or_default()
        };
        Ok(NetworkFilter {
            names: compile("name"),
            ids: compile("id"),
            dangling,
            filters,
        })
    }

    /// Whether [`NetworkFilter::matches`] looks at endpoint counts (only `dangling` does).
    pub fn needs_endpoint_counts(&self) -> bool {
        self.dangling.is_some()
    }

    /// Whether `n` passes every key; `endpoints` is how many endpoints it has.
    pub fn matches(&self, n: &Network, endpoints: usize) -> bool {
        let f = &self.filters;
        if let Some(drivers) = f.get("driver")
            && !drivers.contains(&n.driver)
        {
            return false;
        }
        if let Some(scopes) = f.get("scope")
            && !scopes.contains(&n.scope)
        {
            return false;
        }
        if let Some(names) = f.get("name")
            && !text_matches(names, &self.names, &n.name)
        {
            return false;
        }
        if let Some(ids) = f.get("id")
            && !text_matches(ids, &self.ids, &n.id)
        {
            return false;
        }
        if let Some(labels) = f.get("label")
            && !labels.iter().all(|l| label_matches(l, &n.labels))
        {
            return false;
        }
        if let Some(types) = f.get("type") {
            let builtin = is_predefined(n);
            let ok = types
                .iter()
                .any(|t| (t == "builtin" && builtin) || (t == "custom" && !builtin));
            if !ok {
                return false;
            }
        }
        if let Some(dangling) = self.dangling {
            let in_use = is_predefined(n) || endpoints > 0;
            if dangling == in_use {
                return false;
            }
        }
        true
    }
}

fn is_predefined(n: &Network) -> bool {
    n.builtin || PREDEFINED_NAMES.contains(&n.name.as_str())
}

/// Docker's name/id rule: exact equality, or the value as an unanchored regular expression.
fn text_matches(values: &BTreeSet<String>, regexes: &[Option<Regex>], text: &str) -> bool {
    values.iter().any(|v| v == text) || regexes.iter().flatten().any(|r| r.is_match(text))
}

/// `k` = key present; `k=v` = key present with that value.
pub fn label_matches(term: &str, labels: &BTreeMap<String, String>) -> bool {
    match term.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(term),
    }
}

/// Parses a prune `until` value into Unix nanoseconds: Unix seconds (optionally `.nanos`), an
/// RFC 3339 / date-time string, or a Go duration meaning "now minus it".
pub fn parse_until(value: &str, now_nanos: i64) -> Option<i64> {
    // As Docker's GetTimestamp: "0" is the epoch, not a zero duration.
    if value != "0"
        && let Some(d) = parse_go_duration(value)
    {
        return Some(now_nanos.saturating_sub(d));
    }
    if let Some((secs, frac)) = value.split_once('.').or(Some((value, "")))
        && !secs.is_empty()
        && secs.bytes().all(|c| c.is_ascii_digit())
        && frac.bytes().all(|c| c.is_ascii_digit())
        && frac.len() <= 9
    {
        let s: i64 = secs.parse().unwrap_or(i64::MAX);
        let n: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<9}").parse().ok()?
        };
        return Some(s.saturating_mul(1_000_000_000).saturating_add(n));
    }
    parse_datetime(value)
}

fn parse_datetime(value: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    // Times past 2262 do not fit i64 nanoseconds; they are simply "later than everything".
    let clamp = |n: i128| i64::try_from(n).unwrap_or(if n > 0 { i64::MAX } else { i64::MIN });
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Some(clamp(t.unix_timestamp_nanos()));
    }
    let formats = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    ];
    for f in formats {
        if let Ok(t) = time::PrimitiveDateTime::parse(value, &f) {
            return Some(clamp(t.assume_utc().unix_timestamp_nanos()));
        }
    }
    let date = format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &date)
        .ok()
        .map(|d| clamp(d.midnight().assume_utc().unix_timestamp_nanos()))
}

/// Go's `time.ParseDuration`: a sequence of decimal numbers with units ns us µs ms s m h, an
/// optional sign. Returns nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (neg, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total as i64;
    Some(if neg { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, labels: &[(&str, &str)]) -> Network {
        Network {
            id: format!("{:0>64}", "ab12"),
            name: name.to_string(),
            driver: "bridge".to_string(),
            scope: "local".to_string(),
            created_nanos: 0,
            enable_ipv4: true,
            enable_ipv6: false,
            internal: false,
            attachable: false,
            ingress: false,
            config_only: false,
            config_from: String::new(),
            builtin: false,
            link: None,
            driver_state: serde_json::Value::Null,
            options: BTreeMap::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ipam_driver: "default".to_string(),
            ipam_options: None,
            ipam: Vec::new(),
        }
    }

    fn filter(text: &str) -> Result<NetworkFilter> {
        NetworkFilter::new(Filters::parse(text)?)
    }

    #[test]
    fn both_encodings_parse_alike() {
        let a = Filters::parse(r#"{"name":{"x":true}}"#).unwrap();
        let b = Filters::parse(r#"{"name":["x"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(Filters::parse("").unwrap(), Filters::default());
        assert!(Filters::parse("{").is_err());
        assert!(Filters::parse(r#"{"name":"x"}"#).is_err());
        assert!(Filters::parse("[]").is_err());
        assert_eq!(Filters::parse("null").unwrap(), Filters::default());
        assert!(
            Filters::parse(r#"{"name":null}"#)
                .unwrap()
                .get("name")
                .is_none()
        );
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let err = filter(r#"{"colour":["red"]}"#).err().unwrap();
        assert_eq!(err.to_string(), "invalid filter 'colour'");
    }

    #[test]
    fn name_is_exact_or_unanchored_regex() {
        let n = net("mynet", &[]);
        assert!(filter(r#"{"name":["mynet"]}"#).unwrap().matches(&n, 0));
        assert!(filter(r#"{"name":["yne"]}"#).unwrap().matches(&n, 0));
        assert!(!filter(r#"{"name":["^yne"]}"#).unwrap().matches(&n, 0));
        assert!(filter(r#"{"name":["^my.*t$"]}"#).unwrap().matches(&n, 0));
        assert!(!filter(r#"{"name":["(("]}"#).unwrap().matches(&n, 0));
        // several values of one key: OR
        assert!(
            filter(r#"{"name":["zzz","mynet"]}"#)
                .unwrap()
                .matches(&n, 0)
        );
    }

    #[test]
    fn labels_must_all_hold() {
        let n = net("a", &[("team", "a"), ("env", "prod")]);
        assert!(filter(r#"{"label":["team"]}"#).unwrap().matches(&n, 0));
        assert!(
            filter(r#"{"label":["team=a","env=prod"]}"#)
                .unwrap()
                .matches(&n, 0)
        );
        assert!(
            !filter(r#"{"label":["team=a","env=dev"]}"#)
                .unwrap()
                .matches(&n, 0)
        );
        assert!(
            !filter(r#"{"label":["x"]}"#)
                .unwrap()
                .matches(&net("b", &[]), 0)
        );
    }

    #[test]
    fn type_and_dangling() {
        let mut bridge = net("bridge", &[]);
        bridge.builtin = true;
        let custom = net("c", &[]);
        let builtin = filter(r#"{"type":["builtin"]}"#).unwrap();
        assert!(builtin.matches(&bridge, 0) && !builtin.matches(&custom, 0));
        assert_eq!(
            filter(r#"{"type":["odd"]}"#).err().unwrap().to_string(),
            "invalid filter: 'type'='odd'"
        );
        let dangling = filter(r#"{"dangling":["true"]}"#).unwrap();
        assert!(dangling.matches(&custom, 0));
        assert!(!dangling.matches(&custom, 1));
        assert!(!dangling.matches(&bridge, 0));
        let used = filter(r#"{"dangling":["0"]}"#).unwrap();
        assert!(used.matches(&bridge, 0) && used.matches(&custom, 2) && !used.matches(&custom, 0));
        assert!(filter(r#"{"dangling":["true","false"]}"#).is_err());
        assert!(filter(r#"{"dangling":["maybe"]}"#).is_err());
    }

    #[test]
    fn id_matches_any_substring() {
        let n = net("a", &[]);
        assert!(filter(r#"{"id":["00ab12"]}"#).unwrap().matches(&n, 0));
        assert!(!filter(r#"{"id":["ffff"]}"#).unwrap().matches(&n, 0));
    }

    #[test]
    fn until_forms() {
        let now = 1_700_000_000_000_000_000;
        assert_eq!(parse_until("1h30m", now), Some(now - 5_400_000_000_000));
        assert_eq!(parse_until("10m", now), Some(now - 600_000_000_000));
        assert_eq!(parse_until("1700000000", now), Some(now));
        assert_eq!(parse_until("1700000000.5", now), Some(now + 500_000_000));
        assert_eq!(
            parse_until("2023-11-14T22:13:20Z", now),
            Some(1_699_999_999_999_999_999 + 1)
        );
        assert_eq!(
            parse_until("2023-11-14", now),
            Some(1_699_920_000_000_000_000)
        );
        assert_eq!(parse_until("yesterday", now), None);
        assert_eq!(parse_until("2999-01-01T00:00:00Z", now), Some(i64::MAX));
        assert_eq!(parse_until("0", now), Some(0));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("5x"), None);
    }
}
