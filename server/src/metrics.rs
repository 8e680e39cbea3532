//! Prometheus metrics: a small registry of counters and histograms, rendered in the text
//! exposition format at `GET /metrics`. Kept in-process and lock-light: one mutex per scrape
//! or observation, no allocation on the hot path beyond the label key.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Histogram bucket bounds, in seconds: netlink operations take ~1 ms, bridge deletes ~40 ms.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct Registry {
    /// (route, method, status) → count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// route → latency.
    request_seconds: BTreeMap<String, Histogram>,
    /// (layer, operation) → latency, for netlink, SQLite and etcd work.
    operation_seconds: BTreeMap<(&'static str, &'static str), Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut r = registry()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut r)
}

/// One HTTP request answered.
pub fn request(route: &str, method: &str, status: u16, took: Duration) {
    with(|r| {
        *r.requests
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
        r.request_seconds
            .entry(route.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    });
}

/// One netlink or SQLite operation done.
pub fn operation(layer: &'static str, op: &'static str, took: Duration) {
    with(|r| {
        r.operation_seconds
            .entry((layer, op))
            .or_default()
            .observe(took.as_secs_f64())
    });
}

/// Records the time from its creation to its drop as one operation of `layer`; for code
/// with several exits.
pub struct Timer {
    layer: &'static str,
    op: &'static str,
    started: std::time::Instant,
}

impl Timer {
    pub fn new(layer: &'static str, op: &'static str) -> Timer {
        Timer {
            layer,
            op,
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        operation(self.layer, self.op, self.started.elapsed());
    }
}

/// Times a future as one operation of `layer`.
pub async fn timed<T>(
    layer: &'static str,
    op: &'static str,
    work: impl std::future::Future<Output = T>,
) -> T {
    let started = std::time::Instant::now();
    let out = work.await;
    operation(layer, op, started.elapsed());
    out
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, count) in BUCKETS.iter().zip(h.counts) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// The exposition text; `gauges` are (name, help, value) read at scrape time.
pub fn render(gauges: &[(&str, &str, u64)]) -> String {
    let mut out = String::new();
    with(|r| {
        out.push_str("# HELP netbridge_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE netbridge_http_requests_total counter\n");
        for ((route, method, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "netbridge_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP netbridge_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE netbridge_http_request_duration_seconds histogram\n");
        for (route, h) in &r.request_seconds {
            histogram(
                &mut out,
                "netbridge_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                h,
            );
        }
        out.push_str(
            "# HELP netbridge_operation_duration_seconds Time of netlink, SQLite and etcd operations.\n",
        );
        out.push_str("# TYPE netbridge_operation_duration_seconds histogram\n");
        for ((layer, op), h) in &r.operation_seconds {
            histogram(
                &mut out,
                "netbridge_operation_duration_seconds",
                &format!("layer=\"{layer}\",op=\"{op}\""),
                h,
            );
        }
    });
    for (name, help, value) in gauges {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        request("/networks", "GET", 200, Duration::from_millis(3));
        operation("netlink", "attach", Duration::from_micros(900));
        let text = render(&[("netbridge_networks", "Networks in the store.", 3)]);
        assert!(text.contains(
            "netbridge_http_requests_total{route=\"/networks\",method=\"GET\",status=\"200\"}"
        ));
        assert!(text.contains(
            "netbridge_operation_duration_seconds_bucket{layer=\"netlink\",op=\"attach\",le=\"0.001\"}"
        ));
        assert!(text.contains("netbridge_networks 3"));
    }
}
