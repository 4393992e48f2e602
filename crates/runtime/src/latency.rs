//! Latency per method across the mesh, for the dashboard: each member reads its own
//! component-latency histograms back from its Prometheus text (so this works
//! whatever records them, see `metrics.rs`), members answer a mesh query with them
//! ([`kar_store_api::Signal::ListLatency`]), and the asker merges the histograms
//! (bucket counts add up; quantiles do not) and estimates p50 and p99 from the merged
//! buckets the way Prometheus's `histogram_quantile` does.

use crate::Runtime;
use kar_protocol::NodeId;
pub use kar_store_api::MethodLatency;
use kar_store_api::Signal;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The histogram of how long the component takes to answer (`metrics.rs`).
const HISTOGRAM: &str = "kar_user_code_invocation_durations_histogram_seconds";

/// The component-latency histograms in a Prometheus text exposition. Lines of other
/// metrics, and malformed lines, are skipped.
pub fn parse_histograms(text: &str) -> Vec<MethodLatency> {
    let mut methods: BTreeMap<String, MethodLatency> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(HISTOGRAM) else {
            continue;
        };
        let Some((series, labels, value)) = split_sample(rest) else {
            continue;
        };
        let Some(method) = label(labels, "path") else {
            continue;
        };
        let entry = methods
            .entry(method.clone())
            .or_insert_with(|| MethodLatency {
                method,
                buckets: Vec::new(),
                count: 0,
                sum_micros: 0,
            });
        match series {
            "_bucket" => {
                let bound = match label(labels, "le").as_deref() {
                    Some("+Inf") => u64::MAX,
                    Some(le) => match le.parse::<f64>() {
                        Ok(seconds) => micros(seconds),
                        Err(_) => continue,
                    },
                    None => continue,
                };
                entry.buckets.push((bound, value as u64));
            }
            "_count" => entry.count = value as u64,
            "_sum" => entry.sum_micros = micros(value),
            _ => {}
        }
    }
    let mut out: Vec<MethodLatency> = methods.into_values().collect();
    for m in &mut out {
        m.buckets.sort_unstable();
    }
    out
}

fn micros(seconds: f64) -> u64 {
    (seconds * 1e6).round().max(0.0) as u64
}

/// `_bucket{path="T:m",le="0.5"} 3` after the metric name: the series suffix, the
/// label text and the value.
fn split_sample(rest: &str) -> Option<(&str, &str, f64)> {
    let open = rest.find('{')?;
    let close = rest.rfind('}')?;
    let value = rest.get(close + 1..)?.split_whitespace().next()?;
    Some((&rest[..open], &rest[open + 1..close], value.parse().ok()?))
}

/// The value of label `name` in `a="x",b="y"`, unescaped.
fn label(labels: &str, name: &str) -> Option<String> {
    let mut chars = labels.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next() != Some('"') {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        if key.trim() == name {
            return Some(value);
        }
        chars.next_if_eq(&',')?;
    }
}

/// Merges the histograms of several members, method by method. Members with other
/// bucket bounds (another kar version) merge as step functions: at each bound, a
/// member counts what its own largest bound below it counts.
pub fn merge(parts: impl IntoIterator<Item = Vec<MethodLatency>>) -> Vec<MethodLatency> {
    let mut by_method: BTreeMap<String, Vec<MethodLatency>> = BTreeMap::new();
    for part in parts {
        for m in part {
            by_method.entry(m.method.clone()).or_default().push(m);
        }
    }
    by_method
        .into_iter()
        .map(|(method, ms)| {
            let mut bounds: Vec<u64> = ms
                .iter()
                .flat_map(|m| m.buckets.iter().map(|(b, _)| *b))
                .collect();
            bounds.sort_unstable();
            bounds.dedup();
            let buckets = bounds
                .iter()
                .map(|&bound| {
                    let at = ms.iter().map(|m| {
                        m.buckets
                            .iter()
                            .take_while(|(b, _)| *b <= bound)
                            .last()
                            .map_or(0, |(_, c)| *c)
                    });
                    (bound, at.sum())
                })
                .collect();
            MethodLatency {
                method,
                buckets,
                count: ms.iter().map(|m| m.count).sum(),
                sum_micros: ms.iter().map(|m| m.sum_micros).sum(),
            }
        })
        .collect()
}

/// The `q` quantile (0..=1) in microseconds, interpolated linearly inside its bucket;
/// `None` without observations. In the `+Inf` bucket it is the largest finite bound.
pub fn quantile(m: &MethodLatency, q: f64) -> Option<f64> {
    let total = m.buckets.last().map(|(_, c)| *c)?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut lower, mut below) = (0u64, 0u64);
    for &(bound, count) in &m.buckets {
        if count as f64 >= rank && count > below {
            if bound == u64::MAX {
                return Some(lower as f64);
            }
            let within = (rank - below as f64) / (count - below) as f64;
            return Some(lower as f64 + (bound - lower) as f64 * within);
        }
        lower = if bound == u64::MAX { lower } else { bound };
        below = count;
    }
    Some(lower as f64)
}

impl Runtime {
    /// This member's component-latency histograms (from its own metrics, without
    /// the gauges read from the store).
    pub fn local_latency(&self) -> Vec<MethodLatency> {
        let text = self
            .executor
            .metrics
            .render(&crate::metrics::StoreGauges::default());
        parse_histograms(&text)
    }

    /// The histograms of every live member (this one included), by member; a member
    /// that does not answer within the mesh query timeout is left out.
    pub async fn mesh_latency(
        self: &Arc<Self>,
    ) -> Result<Vec<(NodeId, Vec<MethodLatency>)>, crate::RuntimeError> {
        let members = self.members().await?;
        let queries = members.into_iter().map(|member| async move {
            if member.node == self.node {
                return Some((member.node, self.local_latency()));
            }
            let (query, answer) = self.mesh_latency.open();
            let ask = Signal::ListLatency {
                from: self.node.clone(),
                query,
            };
            self.send(&member.node, &ask).await;
            let listed = tokio::time::timeout(crate::mesh::MESH_QUERY_TIMEOUT, answer).await;
            self.mesh_latency.close(query);
            match listed {
                Ok(Ok(methods)) => Some((member.node, methods)),
                _ => {
                    tracing::warn!(member = %member.node, "a member did not list its latency");
                    None
                }
            }
        });
        Ok(futures::future::join_all(queries)
            .await
            .into_iter()
            .flatten()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> String {
        let name = HISTOGRAM;
        format!(
            "# TYPE {name} histogram\n\
             {name}_bucket{{path=\"T:m\",le=\"0.001\"}} 50\n\
             {name}_bucket{{path=\"T:m\",le=\"0.01\"}} 99\n\
             {name}_bucket{{path=\"T:m\",le=\"+Inf\"}} 100\n\
             {name}_sum{{path=\"T:m\"}} 0.5\n\
             {name}_count{{path=\"T:m\"}} 100\n\
             {name}_bucket{{path=\"s:\\\"x\\\"\",le=\"0.001\"}} 0\n\
             {name}_bucket{{path=\"s:\\\"x\\\"\",le=\"+Inf\"}} 0\n\
             other_metric{{path=\"T:m\"}} 7\n"
        )
    }

    #[test]
    fn parses_the_histograms_of_the_exposition() {
        let parsed = parse_histograms(&text());
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].method, "T:m");
        assert_eq!(
            parsed[0].buckets,
            vec![(1000, 50), (10_000, 99), (u64::MAX, 100)]
        );
        assert_eq!((parsed[0].count, parsed[0].sum_micros), (100, 500_000));
        assert_eq!(parsed[1].method, "s:\"x\"");
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let m = &parse_histograms(&text())[0];
        assert_eq!(quantile(m, 0.5), Some(1000.0));
        assert_eq!(quantile(m, 0.25), Some(500.0));
        assert_eq!(quantile(m, 0.99), Some(10_000.0));
        assert_eq!(
            quantile(m, 1.0),
            Some(10_000.0),
            "+Inf: the last finite bound"
        );
        assert_eq!(quantile(&parse_histograms(&text())[1], 0.5), None);
    }

    #[test]
    fn merged_histograms_add_up() {
        let a = parse_histograms(&text());
        let mut b = parse_histograms(&text());
        b[0].buckets = vec![(500, 10), (u64::MAX, 10)];
        b[0].count = 10;
        let merged = merge([a, b]);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0].buckets,
            vec![(500, 10), (1000, 60), (10_000, 109), (u64::MAX, 110)]
        );
        assert_eq!(merged[0].count, 110);
    }
}
