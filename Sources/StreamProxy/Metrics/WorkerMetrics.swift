import CurlStream
import Prometheus

/// The metrics one worker writes, labelled `worker="N"` so that no two threads ever write the
/// same counter (no contention between workers on the hot path).
final class WorkerMetrics: Sendable {
    let worker: String
    let streams: Counter
    let rejected: Counter
    let clientsGone: Counter
    let shutdownStreams: Counter
    let pauses: Counter
    let bytesForwarded: Counter
    let clientQueuedBytes: Gauge
    let clientConnections: Counter
    let ttfb: ValueHistogram
    /// The worker's curl multi counters, mirrored into the registry at each scrape.
    let curl: CurlMultiCounters

    init(registry: PrometheusCollectorRegistry, worker: Int, curl: CurlMultiCounters) {
        let labels = [("worker", String(worker))]
        self.worker = String(worker)
        self.curl = curl
        streams = registry.makeCounter(descriptor: metric("streamproxy_streams_total", "Client streams started."), labels: labels)
        rejected = registry.makeCounter(descriptor: metric("streamproxy_streams_rejected_total", "Stream requests refused with 503 at maxStreams."), labels: labels)
        clientsGone = registry.makeCounter(descriptor: metric("streamproxy_clients_gone_total", "Streams whose client disconnected before done."), labels: labels)
        shutdownStreams = registry.makeCounter(descriptor: metric("streamproxy_streams_shutdown_total", "Streams cut short by a shutdown."), labels: labels)
        pauses = registry.makeCounter(descriptor: metric("streamproxy_stream_pauses_total", "Times a slow client's upstreams were paused (backpressure)."), labels: labels)
        bytesForwarded = registry.makeCounter(descriptor: metric("streamproxy_bytes_forwarded_total", "Upstream body bytes forwarded as chunk text (UTF-8)."), labels: labels)
        clientConnections = registry.makeCounter(descriptor: metric("streamproxy_client_connections_total", "Client connections accepted (a kept-alive connection carries many streams)."), labels: labels)
        clientQueuedBytes = registry.makeGauge(descriptor: metric("streamproxy_client_queued_bytes", "Bytes queued for clients and not yet accepted by their sockets."), labels: labels)
        ttfb = registry.makeValueHistogram(descriptor: metric("streamproxy_upstream_ttfb_milliseconds", "Time from stream open to an upstream's response head."), labels: labels, buckets: ttfbBuckets)
    }
}

/// The time-to-first-byte histogram's buckets, in milliseconds. A global, so that the registry's
/// copy (kept in an enum whose payload pointer carries tag bits, invisible to LeakSanitizer) is
/// also referenced by a plain pointer: otherwise every sanitized run reports it as leaked.
private let ttfbBuckets: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

/// A metric's name and help text (names carry their unit, Prometheus-style).
func metric(_ name: String, _ help: String) -> MetricNameDescriptor {
    MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
}
