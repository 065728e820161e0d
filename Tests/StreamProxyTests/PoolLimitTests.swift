import Foundation
import Testing
@testable import StreamProxy

/// Upstream pool limits and connection reuse (issue 2, PRODUCT.md §3).
@Suite(.serialized)
struct PoolLimitTests {
    /// 20 upstreams on one host with maxConnectionsPerHost=2: the origin never sees more than
    /// 2 connections at once, and every upstream completes.
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
        // The stats request itself is one more connection, counted once it arrives.
        #expect(try #require(stats.int("peakConnections")) <= 2 + 1, "\(stats)")
        #expect(try #require(stats.int("connectionsAccepted")) <= 2 + 1, "\(stats)")
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

    /// 50 streams one after another over 5 small upstreams with prefix 50: the remainders are
    /// drained, so the origin accepts at most maxConnectionsPerHost connections in all.
    @Test func smallRemaindersAreDrainedAndConnectionsReused() throws {
        let cluster = try TestCluster(routes: ["small": Array(repeating: "/bytes/1024", count: 5)], prefix: 50) { c in
            c.maxConnectionsPerHost = 5
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        for _ in 0..<50 {
            let (_, events, _) = try cluster.stream("/stream/small")
            #expect(try StreamShape(events, upstreams: 5).done().int("ok") == 5)
        }
        let stats = try cluster.originStats()
        // + 1: the connection of the stats request.
        #expect(try #require(stats.int("connectionsAccepted")) <= 5 + 1, "\(stats)")
        #expect(stats.int("bodiesAbandoned") == 0, "every small body was read to its end")
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
