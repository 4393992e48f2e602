//! Traces export (README "Traces and metrics"): OTLP over HTTP/protobuf to the
//! collector the standard variables name (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`; `OTEL_SERVICE_NAME`, default `kar`;
//! the `OTEL_BSP_*` batch settings). With neither endpoint set, tracing stays off and
//! nothing is set up: the runtime's span points then cost one atomic load.

use anyhow::{Context as _, Result};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

/// The installed exporter, flushed by [`Traces::shutdown`].
pub struct Traces(SdkTracerProvider);

/// Sets up the exporter if an OTLP endpoint is configured (call inside the tokio
/// runtime: the batch processor runs on it).
pub fn init(app: &str) -> Result<Option<Traces>> {
    let configured = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        && !configured("OTEL_EXPORTER_OTLP_ENDPOINT")
    {
        return Ok(None);
    }
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .context("cannot set up the OTLP trace exporter")?;
    // The plain batch processor runs on a thread of its own, where the hyper client
    // finds no reactor: this one runs on the tokio runtime.
    let processor = BatchSpanProcessor::builder(exporter, Tokio).build();
    let mut resource =
        Resource::builder().with_attribute(KeyValue::new("kar.app", app.to_string()));
    if !configured("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("kar");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    kar_runtime::telemetry::enable();
    Ok(Some(Traces(provider)))
}

impl Traces {
    /// Exports the spans still queued (blocks: call it off the async threads).
    pub fn shutdown(self) {
        if let Err(e) = self.0.shutdown() {
            tracing::warn!("cannot flush the last traces: {e}");
        }
    }
}
