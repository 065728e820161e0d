import EventLoop
import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// The process-wide upstream pool (issue 9, PRODUCT.md §3 and §8) over real sockets: limits
/// hold for the whole process whatever `workers` is, one stream may use every slot, and the
/// pool heals at once after clients leave.
@Suite(.serialized)
struct ProcessWidePoolTests {
    /// 20 upstreams on one host, per-host limit 2, two workers: the origin sees exactly 2
    /// connections at once (not 1, as when each worker had half the limit; not 3).
    @Test func perHostLimitIsExactAcrossWorkers() throws {
        let cluster = try TestCluster(routes: ["many": Array(repeating: "/delay/50", count: 20)], prefix: 2048, workers: 2) { c in
            c.maxConnectionsPerHost = 2
        }
        defer { cluster.stop() }
        try cluster.resetOriginStatsWhenQuiet()
        let (_, events, _) = try cluster.stream("/stream/many")
        #expect(try StreamShape(events, upstreams: 20).done().int("ok") == 20)
        let stats = try cluster.originStats()
        #expect(stats.int("peakConnections") == 2, "\(stats)")
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_connections_open_max") == 2)
    }

    /// maxConnections 3 with the default per-host 10 starts, and holds across two origins and
    /// two workers: the proxy never holds more than 3, and every upstream completes.
    @Test func totalLimitHoldsAcrossHostsAndWorkers() throws {
        let second = try startOrigin()
        defer { second.stopAndJoin() }
        let other = "http://127.0.0.1:\(second.info)/delay/50"
        let cluster = try TestCluster(routes: ["two": (0..<12).map { $0 % 2 == 0 ? "/delay/50" : other }], prefix: 2048, workers: 2) { c in
            c.maxConnections = 3
        }
        defer { cluster.stop() }
        try cluster.resetOriginStatsWhenQuiet()
        try resetWhenQuiet(port: second.info)
        let (_, events, _) = try cluster.stream("/stream/two")
        #expect(try StreamShape(events, upstreams: 12).done().int("ok") == 12)
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_connections_open_max") == 3)
        let peaks = try [cluster.originStats(), RawHTTPClient.get(port: second.info, path: "/stats").json()]
            .map { try #require($0.int("peakConnections")) }
        #expect(peaks.allSatisfy { $0 <= 3 } && peaks.reduce(0, +) >= 3, "\(peaks)")
    }

    /// 12 upstreams of 1.5 s, per-host limit 2, poolTimeout 0.5 s, two workers: the 2 slots
    /// serve 2 upstreams, the other 10 end as `pool` errors.
    @Test func waitersBeyondTheSlotsTimeOut() throws {
        let cluster = try TestCluster(routes: ["slow": Array(repeating: "/delay/1500", count: 12)], prefix: 10, workers: 2) { c in
            c.maxConnectionsPerHost = 2
            c.poolTimeout = 0.5
        }
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/slow")
        let shape = try StreamShape(events, upstreams: 12)
        let kinds = try (0..<12).compactMap { try shape.error(of: $0)?.string("kind") }
        #expect(kinds == Array(repeating: "pool", count: 10))
        #expect(try shape.done().int("ok") == 2)
    }

    /// With the default limits, a client that stops reading holds 6 connections to a host with
    /// its paused upstreams; streams to that host on either worker still run at once.
    @Test func stuckClientDoesNotHoldUpOtherStreams() throws {
        let size = 64 << 20
        let cluster = try TestCluster(routes: ["big": Array(repeating: "/bytes/\(size)", count: 6), "small": ["/bytes/1024"]],
                                      prefix: 4 << 20, workers: 2) { c in
            c.maxPrefix = 8 << 20
        }
        defer { cluster.stop() }
        let stuck = try SSEClient.open(port: cluster.proxyPort, path: "/stream/big", receiveBufferSize: 4096)
        #expect(try stuck.next()?.event == "open")
        let paused = try waitUntil(timeout: .seconds(10)) {
            let m = try cluster.metrics()
            return metricValue(m, "streamproxy_stream_pauses_total") >= 1
                && metricValue(m, "streamproxy_upstream_transfers_in_flight") == 6
        }
        #expect(paused != nil, "the stuck client's 6 upstreams hold connections, paused")
        // New connections each: the kernel spreads them over both workers.
        for _ in 0..<8 {
            let (_, events, _) = try cluster.stream("/stream/small")
            let shape = try StreamShape(events, upstreams: 1)
            #expect(try shape.done().int("ok") == 1)
            #expect(try shape.error(of: 0) == nil)
        }
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_errors_total", labels: ["kind": "pool"]) == 0)
        stuck.close()
    }

    /// The disconnect storm, three rounds: 100 streams cut mid-flight (with RST, or with FIN)
    /// while their upstreams connect, wait for a response or read a body, and at once 200 new
    /// streams, 100 at a time: every one completes with no `pool` error (a transfer held back by a
    /// slot that never came free fails with `pool` at poolTimeout, as in the old stall).
    /// Afterwards every lease the proxy holds is an idle connection.
    @Test(arguments: [true, false])
    func disconnectStormLeavesNoSlotTaken(reset: Bool) throws {
        let route = ["/delay/300", "/bytes/20000?rate=40000", "/bytes/1024", "/delay/100", "/bytes/1024"]
        let cluster = try TestCluster(routes: ["w": route], prefix: 1 << 20, workers: 2) { c in
            c.maxConnections = 100
            c.maxConnectionsPerHost = 100
            c.maxKeepalive = 100
        }
        defer { cluster.stop() }
        for round in 0..<3 {
            var clients: [SSEClient] = []
            for _ in 0..<100 { clients.append(try SSEClient.open(port: cluster.proxyPort, path: "/stream/w")) }
            for c in clients { #expect(try c.next()?.event == "open") }
            for c in clients { c.close(reset: reset) }

            let r = try bench(cluster, route: "w", concurrency: 100, count: 200)
            #expect(r.completed == 200, "round \(round): \(r.errors)")
            #expect(r.errors.isEmpty, "round \(round)")
        }
        var last = ""
        let healed = try waitUntil(timeout: .seconds(3)) {
            last = try cluster.metrics()
            return metricValue(last, "streamproxy_streams_open") == 0
                && metricValue(last, "streamproxy_upstream_transfers_in_flight") == 0
                && metricValue(last, "streamproxy_upstream_transfers_queued") == 0
                && metricValue(last, "streamproxy_upstream_connections_open") == metricValue(last, "streamproxy_upstream_connections_idle")
        }
        #expect(healed != nil, "every lease is an idle connection:\n\(poolLines(last))")
        #expect(metricValue(last, "streamproxy_upstream_connections_idle") <= 100)
        #expect(metricValue(last, "streamproxy_upstream_errors_total", labels: ["kind": "pool"]) == 0)
    }

    private func bench(_ cluster: TestCluster, route: String, concurrency: Int, count: Int) throws -> BenchResult {
        let loop = try EventLoop(preciseTimers: true)
        let target = try #require(BenchTarget("http://127.0.0.1:\(cluster.proxyPort)/stream/\(route)"))
        let run = BenchRun(loop: loop, target: target, load: .closed(concurrency: concurrency), limit: .count(count),
                           streamTimeout: 20, keepAlive: false)
        run.onFinished = { [unowned loop] in loop.stop() }
        run.start()
        loop.run()
        return run.result
    }

    private func poolLines(_ metrics: String) -> String {
        metrics.split(separator: "\n").filter { !$0.hasPrefix("#") && $0.contains("upstream") && !$0.contains("bucket") }
            .joined(separator: "\n")
    }
}

extension TestCluster {
    /// Resets the origin's counters once no connection but the asking one is open, so that a
    /// peak measured afterwards counts the proxy's connections only.
    func resetOriginStatsWhenQuiet() throws { try resetWhenQuiet(port: originPort) }
}

/// Resets the counters of the test origin on `port` once no other connection is open.
func resetWhenQuiet(port: UInt16) throws {
    func open() throws -> Int { try RawHTTPClient.get(port: port, path: "/stats").json().int("openConnections") ?? 0 }
    _ = try waitUntil(timeout: .seconds(2)) { try open() <= 1 }
    _ = try RawHTTPClient.get(port: port, path: "/stats/reset")
    _ = try waitUntil(timeout: .seconds(2)) { try open() <= 1 }
}
