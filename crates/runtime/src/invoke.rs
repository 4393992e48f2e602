//! Invoking the component: the call itself (its metrics label), the span of one
//! delivery attempt, and the span of the call while tracing is on.

use crate::executor::lock;
use crate::fast_map::FastMap;
use crate::metrics::Label;
use crate::telemetry::{self, Relation, Span};
use crate::{AppReply, Runtime};
use kar_protocol::{Invocation, Outcome, Request, RequestId, Target, TraceContext};
use std::sync::Mutex;

impl Runtime {
    /// Sends an invocation to this runtime's component; `label` names it in the
    /// metrics.
    pub(crate) async fn invoke_app(
        &self,
        invocation: &Invocation,
        label: Option<Label<'_>>,
    ) -> Result<AppReply, Outcome> {
        match &self.executor.app {
            Some(app) => {
                let started = tokio::time::Instant::now();
                let result = app.invoke(invocation).await;
                if let (Some(label), Ok(_)) = (label, &result) {
                    self.executor.metrics.observe(label, started.elapsed());
                }
                result.map_err(|e| Outcome::Failed(e.to_string()))
            }
            None => Err(Outcome::Failed(format!(
                "node {} has no component",
                self.node
            ))),
        }
    }

    /// The span of one delivery attempt of one step of `request` here: a child of
    /// the span its record refers to (see `telemetry.rs`).
    /// Counts the attempt in the metrics too.
    pub(crate) fn attempt_span(&self, request: &Request) -> Span {
        self.executor.metrics.attempt(request.attempt > 0);
        if !telemetry::on() {
            return Span::default();
        }
        telemetry::start(
            || format!("attempt {}", telemetry::target_label(request)),
            telemetry::Kind::Consumer,
            request.trace.map_or(Relation::Root, Relation::ChildOf),
            || {
                let mut attributes = telemetry::request_attributes(&self.config.app, request);
                attributes.push(opentelemetry::KeyValue::new(
                    "kar.attempt",
                    i64::from(request.attempt),
                ));
                attributes.push(opentelemetry::KeyValue::new(
                    "kar.sidecar",
                    self.node.0.clone(),
                ));
                attributes
            },
        )
    }

    /// [`Runtime::invoke_app`] for request `id` inside its `attempt` span: while
    /// tracing is on, the call gets its own span, whose context goes to the component
    /// as `traceparent` and parents the nested requests the component makes.
    pub(crate) async fn invoke_traced(
        &self,
        invocation: &Invocation,
        label: Label<'_>,
        attempt: &Span,
        request: &Request,
    ) -> Result<AppReply, Outcome> {
        let id = &request.id;
        let Some(parent) = attempt.context() else {
            return self.invoke_app(invocation, Some(label)).await;
        };
        let mut span = telemetry::start(
            || format!("component {label}"),
            telemetry::Kind::Client,
            Relation::ChildOf(parent),
            || {
                vec![
                    opentelemetry::KeyValue::new("kar.app", self.config.app.clone()),
                    opentelemetry::KeyValue::new("kar.request.id", id.0.clone()),
                    opentelemetry::KeyValue::new("http.request.method", invocation.method.clone()),
                    opentelemetry::KeyValue::new("url.path", invocation.path.clone()),
                ]
            },
        );
        let Some(context) = span.context() else {
            return self.invoke_app(invocation, Some(label)).await;
        };
        let traced = Invocation {
            headers: telemetry::with_traceparent(&invocation.headers, &context),
            ..invocation.clone()
        };
        lock(&self.executor.traced).insert(id.clone(), (context, request.target.clone()));
        // Removed however the call ends (an abandoned request drops this future).
        let _untrace = Untrace(&self.executor.traced, id);
        let result = self.invoke_app(&traced, Some(label)).await;
        match &result {
            Ok(answer) => telemetry::status(&mut span, answer.reply.status),
            Err(failed) => telemetry::outcome(&mut span, failed),
        }
        result
    }
}

/// Forgets the component-call span of a request when dropped.
struct Untrace<'a>(
    &'a Mutex<FastMap<RequestId, (TraceContext, Target)>>,
    &'a RequestId,
);

impl Drop for Untrace<'_> {
    fn drop(&mut self) {
        lock(self.0).remove(self.1);
    }
}
