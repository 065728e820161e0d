import CurlStream
import EventLoop
import Foundation
import Prometheus

/// The proxy's `/metrics`: Prometheus text format.
///
/// Hot-path metrics are written by each worker into its own labelled series. Gauges of shared
/// state (open streams, upstream connections, process resources) and the curl counters are read
/// when a scrape renders; scrapes are serialised by a lock (never taken on the hot path).
final class ProxyMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let scrape = PthreadLock<[String: Int]>([:])
    private let gate: StreamGate
    private let budget: ConnectionBudget
    private let workers = PthreadLock<[WorkerMetrics]>([])

    private let streamsOpen: Gauge
    private let connectionsOpen: Gauge
    private let connectionsPeak: Gauge
    private let connectionsIdle: Gauge
    private let openFDs: Gauge
    private let threads: Gauge
    private let residentBytes: Gauge

    init(gate: StreamGate, budget: ConnectionBudget) {
        self.gate = gate
        self.budget = budget
        streamsOpen = registry.makeGauge(descriptor: metric("streamproxy_streams_open", "Client streams open now."))
        connectionsOpen = registry.makeGauge(descriptor: metric("streamproxy_upstream_connections_open",
            "Upstream connection leases held now, whole process (connections in use or idle, and ones being opened)."))
        connectionsPeak = registry.makeGauge(descriptor: metric("streamproxy_upstream_connections_open_max",
            "The most upstream connection leases held at once since start."))
        connectionsIdle = registry.makeGauge(descriptor: metric("streamproxy_upstream_connections_idle",
            "Idle upstream connections kept for reuse, whole process."))
        openFDs = registry.makeGauge(descriptor: metric("process_open_fds", "Open file descriptors."))
        threads = registry.makeGauge(descriptor: metric("process_threads", "Threads of the process."))
        residentBytes = registry.makeGauge(descriptor: metric("process_resident_memory_bytes", "Resident memory size in bytes."))
    }

    /// Registers a worker's metrics.
    func addWorker(_ n: Int, curl: CurlMultiCounters) -> WorkerMetrics {
        let m = WorkerMetrics(registry: registry, worker: n, curl: curl)
        workers.withLock { $0.append(m) }
        return m
    }

    /// Renders every metric, refreshing the gauges read at scrape time.
    func render() -> [UInt8] {
        scrape.withLock { mirrored in
            streamsOpen.set(Int64(gate.count))
            connectionsOpen.set(Int64(budget.openConnections))
            connectionsPeak.set(Int64(budget.peakConnections))
            connectionsIdle.set(Int64(budget.idleConnections))
            let process = ProcessStats.read()
            openFDs.set(Int64(process.openFDs))
            threads.set(Int64(process.threads))
            residentBytes.set(Int64(process.residentBytes))
            for w in workers.withLock({ $0 }) {
                mirror(w, into: &mirrored)
            }
        }
        return registry.emitToBuffer()
    }

    /// Copies a worker's curl counters into the registry (counters as increments since the last
    /// scrape, so they stay monotonic).
    private func mirror(_ w: WorkerMetrics, into mirrored: inout [String: Int]) {
        let labels = [("worker", w.worker)]
        registry.makeGauge(descriptor: metric("streamproxy_upstream_transfers_in_flight", "Upstream transfers holding a connection."), labels: labels).set(Int64(w.curl.active.load(ordering: .relaxed)))
        registry.makeGauge(descriptor: metric("streamproxy_upstream_transfers_queued", "Upstream transfers waiting for a connection slot."), labels: labels).set(Int64(w.curl.queued.load(ordering: .relaxed)))
        func counter(_ name: String, _ extra: [(String, String)], _ help: String, _ value: Int) {
            let key = name + w.worker + extra.map { $0.1 }.joined()
            let delta = value - mirrored[key, default: 0]
            mirrored[key] = value
            if delta > 0 {
                registry.makeCounter(descriptor: metric(name, help), labels: labels + extra).increment(by: Int64(delta))
            } else {
                _ = registry.makeCounter(descriptor: metric(name, help), labels: labels + extra)
            }
        }
        counter("streamproxy_upstream_transfers_total", [], "Upstream transfers started.", w.curl.started.load(ordering: .relaxed))
        let responses = [("1.0", w.curl.responsesHTTP10.load(ordering: .relaxed)),
                         ("1.1", w.curl.responsesHTTP11.load(ordering: .relaxed)),
                         ("2", w.curl.responsesHTTP2.load(ordering: .relaxed))]
        for (version, value) in responses {
            counter("streamproxy_upstream_responses_total", [("protocol", version)],
                    "Upstream response heads received, by the HTTP version they came in.", value)
        }
        counter("streamproxy_upstream_transfers_completed_total", [], "Upstream transfers read to their natural end.", w.curl.succeeded.load(ordering: .relaxed))
        for kind in TransferErrorKind.allCases {
            counter("streamproxy_upstream_errors_total", [("kind", kind.rawValue)], "Upstream transfers that failed, by kind.",
                    w.curl.failed(kind))
        }
        counter("streamproxy_upstream_connections_opened_total", [], "Upstream transfers that opened a new connection.",
                w.curl.connectionsOpened.load(ordering: .relaxed))
        counter("streamproxy_upstream_connections_reused_total", [], "Upstream transfers that reused a kept-alive connection.",
                w.curl.connectionsReused.load(ordering: .relaxed))
        counter("streamproxy_upstream_drained_total", [], "Transfers whose small remainder was read to keep the connection.",
                w.curl.drained.load(ordering: .relaxed))
        counter("streamproxy_upstream_cut_total", [], "Transfers cut after their prefix or their client's departure.",
                w.curl.cut.load(ordering: .relaxed))
        counter("streamproxy_upstream_connections_given_up_total", [],
                "Idle upstream connections closed so that a waiting transfer could have their slot, or to stay within maxKeepalive.",
                w.curl.givenUp.load(ordering: .relaxed))
        counter("streamproxy_upstream_pool_pokes_total", [],
                "Times another worker asked this one to look at its pool (a lease came free, or an idle connection it holds is wanted).",
                w.curl.pokes.load(ordering: .relaxed))
        counter("streamproxy_coalesced_fetches_total", [],
                "Upstream fetches started on coalesced routes (each shared by the streams that join it).",
                w.curl.sharedFetches.load(ordering: .relaxed))
        counter("streamproxy_coalesced_joins_total", [], "Stream upstreams that joined a running shared fetch.",
                w.curl.sharedJoins.load(ordering: .relaxed))
        counter("streamproxy_coalesced_cache_hits_total", [],
                "Stream upstreams served by a shared fetch that completed within their route's cacheFor.",
                w.curl.sharedCacheHits.load(ordering: .relaxed))
        registry.makeGauge(descriptor: metric("streamproxy_coalesced_bytes_held",
            "Body bytes held by shared fetches now (each fetch's prefix, once)."), labels: labels).set(Int64(w.curl.sharedBytes.load(ordering: .relaxed)))
        registry.makeGauge(descriptor: metric("streamproxy_upstream_transfers_resolving", "Upstream transfers waiting for their host's DNS lookup."), labels: labels).set(Int64(w.curl.resolving.load(ordering: .relaxed)))
        counter("streamproxy_upstream_libcurl_resolves_total", [],
                "Host lookups libcurl started itself (each on a resolver thread); names are resolved on the workers' loops, so this stays 0.",
                w.curl.libcurlResolves.load(ordering: .relaxed))
    }
}

/// Process resources, from procfs (memory-backed: reading it does not wait on a disk).
struct ProcessStats {
    var openFDs = 0
    var threads = 0
    var residentBytes = 0

    static func read() -> ProcessStats {
        var s = ProcessStats()
        s.openFDs = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 1) - 1
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let value = parts[1].trimmingCharacters(in: .whitespaces)
                if parts[0] == "Threads" { s.threads = Int(value) ?? 0 }
                if parts[0] == "VmRSS" { s.residentBytes = (Int(value.split(separator: " ").first ?? "") ?? 0) * 1024 }
            }
        }
        return s
    }
}
