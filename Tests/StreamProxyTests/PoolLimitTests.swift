import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Upstream pool limits and connection reuse (issue 2, PRODUCT.md §3).
@Suite(.serialized)
struct PoolLimitTests {
    /// 20 upstreams on one host with maxConnectionsPerHost=2: the origin sees exactly 2
    /// connections at once, opened once and reused, and every upstream completes.
    @Test func perHostLimitCapsConnections() throws {
        let cluster = try TestCluster(routes: ["many": Array(repeating: "/bytes/1024", count: 20)], prefix: 2048) { c in
            c.maxConnectionsPerHost = 2
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let (_, events, _) = try cluster.stream("/stream/many")
        let shape = try StreamShape(events, upstreams: 20)
        #expect(try shape.done().int("ok") == 20)
        let stats = try cluster.originStats()
        // peakConnections leaves out the connections of /stats requests (the origin counts it on
        // every other request), so it is the proxy's alone: the cap, reached since 20 wait for it.
        #expect(stats.int("peakConnections") == 2, "\(stats)")
        // Accepted since the reset: the proxy's 2 connections and the one of this stats request.
        #expect(stats.int("connectionsAccepted") == 2 + 1, "\(stats)")
    }

    /// With a tiny poolTimeout, transfers that wait for a slot end as `pool` errors while the
    /// ones holding the slots complete.
    @Test func queuedTransfersTimeOutAsPoolErrors() throws {
        let cluster = try TestCluster(routes: ["slow": Array(repeating: "/delay/300", count: 20)], prefix: 10) { c in
            c.maxConnectionsPerHost = 2
            c.poolTimeout = 0.05
        }
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/slow")
        let shape = try StreamShape(events, upstreams: 20)
        let kinds = try (0..<20).compactMap { try shape.error(of: $0)?.string("kind") }
        #expect(kinds.count == 18)
        #expect(Set(kinds) == ["pool"])
        let done = try shape.done()
        #expect(done.int("ok") == 2)
        #expect(done.int("failed") == 18)
    }

    /// 50 streams one after another over 5 small upstreams with prefix 50, each body trickled
    /// (200 bytes every 10 ms, so each remainder arrives over several reads): every remainder is
    /// drained to its end, so no body is abandoned, no transfer is cut, and the origin accepts
    /// exactly maxConnectionsPerHost connections in all.
    @Test func smallRemaindersAreDrainedAndConnectionsReused() throws {
        let cluster = try TestCluster(routes: ["small": Array(repeating: "/bytes/1024?rate=20000", count: 5)], prefix: 50) { c in
            c.maxConnectionsPerHost = 5
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        for _ in 0..<50 {
            let (_, events, _) = try cluster.stream("/stream/small")
            #expect(try StreamShape(events, upstreams: 5).done().int("ok") == 5)
        }
        // A stream is done at its prefix; the last remainders are still being drained. Once no
        // transfer is left (the proxy read every body to its end), ask the origin once.
        let drained = try waitUntil(timeout: .seconds(5)) {
            metricValue(try cluster.metrics(), "streamproxy_upstream_transfers_in_flight") == 0
        }
        #expect(drained != nil, "the last remainders were drained")
        let stats = try cluster.originStats()
        #expect(stats.int("responsesInProgress") == 0, "\(stats)")
        // + 1: the connection of the stats request.
        #expect(stats.int("connectionsAccepted") == 5 + 1, "\(stats)")
        #expect(stats.int("bodiesAbandoned") == 0, "a cut mid-trickle would abandon the body: \(stats)")
        #expect(stats.int("bodyBytesSent") == 250 * 1024)
        let metrics = try cluster.metrics()
        #expect(metricValue(metrics, "streamproxy_upstream_drained_total") == 250)
        #expect(metricValue(metrics, "streamproxy_upstream_cut_total") == 0)
        #expect(metricValue(metrics, "streamproxy_upstream_connections_opened_total") == 5)
        #expect(metricValue(metrics, "streamproxy_upstream_connections_reused_total") == 250 - 5)
    }

    /// With 16 MiB bodies the remainder is above drainLimit: each transfer is cut and the origin
    /// sends only a small fraction of each body. (The bodies are larger than what loopback socket
    /// buffers can absorb, 4 MiB at most here, so the origin cannot finish a body before the cut.)
    @Test func largeRemaindersAreCut() throws {
        let size = 16 << 20
        let cluster = try TestCluster(routes: ["big": Array(repeating: "/bytes/\(size)?chunk=16384", count: 5)], prefix: 50) { c in
            c.maxConnectionsPerHost = 5
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        for _ in 0..<50 {
            let (_, events, _) = try cluster.stream("/stream/big")
            #expect(try StreamShape(events, upstreams: 5).done().int("ok") == 5)
        }
        let stats = try cluster.originStatsWhenIdle()
        #expect(stats.int("bodiesAbandoned") == 250)
        let sent = try #require(stats.int("bodyBytesSent"))
        #expect(sent < 250 * size / 10, "origin sent \(sent) of \(250 * size) bytes")
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_cut_total") == 250)
    }
}
