//! A small OTLP/HTTP trace receiver for the trace tests: `POST /v1/traces` bodies
//! (protobuf `ExportTraceServiceRequest`) decoded with the official definitions
//! (`opentelemetry-proto`), kept in memory as [`SpanRecord`]s. Point a `kar run` at it
//! with `OTEL_EXPORTER_OTLP_ENDPOINT` = [`OtlpReceiver::endpoint`].

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One span as received.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// Values in their text form.
    pub attributes: BTreeMap<String, String>,
    /// `(trace id, span id)` of each link.
    pub links: Vec<(String, String)>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The status message of a failed span.
    pub error: Option<String>,
}

impl SpanRecord {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// The receiver; it stops listening when dropped (its thread ends with the test).
pub struct OtlpReceiver {
    port: u16,
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

impl OtlpReceiver {
    pub fn start() -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OTLP receiver");
        let port = listener.local_addr().expect("local address").port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::downgrade(&spans);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Some(spans) = kept.upgrade() else { return };
                if let Ok(stream) = stream {
                    std::thread::spawn(move || serve(stream, &spans));
                }
            }
        });
        OtlpReceiver { port, spans }
    }

    /// The value of `OTEL_EXPORTER_OTLP_ENDPOINT` (kar appends `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a `kar run` exporting here gets: this endpoint and a short
    /// batch delay (spans are exported within ~100 ms instead of 5 s).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
        ]
    }

    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until a span satisfies `found` (panics after `timeout`, printing what
    /// arrived).
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        found: impl Fn(&SpanRecord) -> bool,
    ) -> SpanRecord {
        let mut result = None;
        let arrived = crate::poll_until(timeout, Duration::from_millis(50), || {
            result = self.spans().into_iter().find(|s| found(s));
            result.is_some()
        });
        if !arrived {
            panic!(
                "no span {what} within {timeout:?}; received:\n{}",
                render(&self.spans())
            );
        }
        result.expect("found")
    }

    /// The spans of trace `trace_id`.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

/// A tree of spans, one per line, children indented under their parent (spans whose
/// parent is not among them are roots), with their ids and main attributes.
pub fn render(spans: &[SpanRecord]) -> String {
    let mut out = String::new();
    let mut spans: Vec<&SpanRecord> = spans.iter().collect();
    spans.sort_by_key(|s| s.start_ns);
    let known: Vec<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    fn line(out: &mut String, all: &[&SpanRecord], span: &SpanRecord, depth: usize) {
        let shown: Vec<String> = [
            "kar.sidecar",
            "kar.request.id",
            "kar.attempt",
            "kar.step",
            "http.response.status_code",
        ]
        .iter()
        .filter_map(|k| span.attr(k).map(|v| format!("{k}={v}")))
        .collect();
        let links: Vec<String> = span
            .links
            .iter()
            .map(|(t, s)| format!("link→{}/{}", &t[..8], s))
            .collect();
        let _ = writeln!(
            out,
            "{}{} [{}] trace={} span={} {:.1}ms {} {}{}",
            "  ".repeat(depth),
            span.name,
            span.service,
            &span.trace_id[..8],
            span.span_id,
            span.end_ns.saturating_sub(span.start_ns) as f64 / 1e6,
            shown.join(" "),
            links.join(" "),
            span.error
                .as_ref()
                .map(|e| format!(" ERROR {e}"))
                .unwrap_or_default()
        );
        for child in all.iter().filter(|c| c.parent_span_id == span.span_id) {
            line(out, all, child, depth + 1);
        }
    }
    for root in spans
        .iter()
        .filter(|s| !known.contains(&s.parent_span_id.as_str()))
    {
        if !root.parent_span_id.is_empty() {
            let _ = writeln!(
                out,
                "(parent span {}, not exported here)",
                root.parent_span_id
            );
        }
        line(&mut out, &spans, root, 0);
    }
    out
}

/// Serves one connection: keep-alive HTTP/1.1 requests with a Content-Length body.
fn serve(stream: TcpStream, spans: &Mutex<Vec<SpanRecord>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.to_ascii_lowercase().contains("chunked")
                {
                    chunked = true;
                }
            }
        }
        let body = if chunked {
            match read_chunked(&mut reader) {
                Some(body) => body,
                None => return,
            }
        } else {
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            body
        };
        let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(export) => {
                let mut kept = spans.lock().unwrap_or_else(|e| e.into_inner());
                kept.extend(records(export));
                "200 OK"
            }
            Err(_) => "400 Bad Request",
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        );
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A `Transfer-Encoding: chunked` body (what Node's exporter sends).
fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).ok()? == 0 || line.trim_end().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn records(export: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in export.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|v| text(v.value.as_ref()))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(SpanRecord {
                    service: service.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    error: span.status.filter(|s| s.code == 2).map(|s| s.message),
                });
            }
        }
    }
    out
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
