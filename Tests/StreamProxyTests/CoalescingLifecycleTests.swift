import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// How a shared fetch (issue 12) ends, over real sockets: failed fetches, readers that leave,
/// and the `cacheFor` micro-cache.
@Suite(.serialized)
struct CoalescingLifecycleTests {
    /// A fetch that fails gives every joiner the same `error` (kind and message) after the same
    /// bytes, as a fetch of its own would; a 5xx head is forwarded alike. Neither is cached: with
    /// `cacheFor` set, a stream that starts after them fetches anew.
    @Test func failedFetchGivesEveryJoinerTheSameErrorAndIsNotCached() throws {
        let upstreams = ["/bytes/100000?delay=600&resetAfter=2000&chunk=500", "/malformed?delay=600", "/status/503?delay=600"]
        let cluster = try TestCluster(routes: ["f": upstreams, "u": upstreams], prefix: 10_000) { config in
            config.coalesce("f", cacheFor: 30)
        }
        defer { cluster.stop() }
        let reference = try StreamShape(try cluster.stream("/stream/u").events, upstreams: 3)
        let resetError = try #require(try reference.error(of: 0))
        let malformedError = try #require(try reference.error(of: 1))
        #expect(resetError.string("kind") == "reset")
        #expect(try reference.text(of: 0) == String(decoding: OriginBody.ascii.slice(offset: 0, count: 2000), as: UTF8.self))
        #expect(malformedError.string("kind") == "protocol")
        #expect(try reference.end(of: 2) != nil && reference.error(of: 2) == nil, "a 503 is not an error")

        try cluster.resetOriginStats()
        let clients = try (0..<3).map { _ in try SSEClient.open(port: cluster.proxyPort, path: "/stream/f") }
        let shapes = try clients.map { try StreamShape(try $0.readToEnd(timeout: .seconds(10)), upstreams: 3) }
        #expect(try shapes.map { try $0.shared(of: 0) } == ["started", "joined", "joined"])
        for (n, shape) in shapes.enumerated() {
            let reset = try #require(try shape.error(of: 0), "stream \(n)")
            let malformed = try #require(try shape.error(of: 1), "stream \(n)")
            #expect(reset.string("kind") == resetError.string("kind"))
            #expect(reset.string("message") == resetError.string("message"), "stream \(n): \(reset) vs \(resetError)")
            #expect(try shape.text(of: 0) == reference.text(of: 0), "stream \(n): the bytes before the reset")
            // The malformed response fails before any byte, the same way for everyone.
            #expect(malformed.string("kind") == malformedError.string("kind"))
            #expect(malformed.string("message") == malformedError.string("message"), "stream \(n): \(malformed)")
            let head = try #require(shape.byUpstream[2]?.first { $0.event == "head" }).json()
            #expect(head.int("status") == 503)
            #expect(try shape.text(of: 2) == reference.text(of: 2))
            #expect(try shape.done().int("failed") == 2)
        }
        #expect(try cluster.originStatsWhenIdle().requestsByTarget == Dictionary(uniqueKeysWithValues: upstreams.map { ($0, 1) }),
                "one request per upstream for the three streams")

        // Within cacheFor, but nothing of those fetches was cacheable.
        let again = try StreamShape(try cluster.stream("/stream/f").events, upstreams: 3)
        // (The malformed response has no head to say so.)
        #expect(try [again.shared(of: 0), again.shared(of: 2)] == ["started", "started"])
        #expect(try again.error(of: 0)?.string("kind") == "reset")
        #expect(try again.error(of: 1)?.string("message") == malformedError.string("message"))
        let byURL = try cluster.originStatsWhenIdle().requestsByTarget
        #expect(byURL == Dictionary(uniqueKeysWithValues: upstreams.map { ($0, 2) }), "errors and 5xx are never served from the cache")
        let figures = try cluster.coalescing()
        #expect(figures.fetches == [6] && figures.joins == [6] && figures.cacheHits == [0], "\(figures)")
    }

    /// Of three streams reading a trickle, two leave: the fetch goes on and the third gets its
    /// whole prefix from one origin request that was not abandoned.
    @Test func leavingJoinersDoNotCancelTheFetch() throws {
        let cluster = try TestCluster(routes: ["l": ["/bytes/3000?rate=3000&chunk=150"]], prefix: 3000) { config in
            config.coalesce("l")
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let clients = try (0..<3).map { _ in try SSEClient.open(port: cluster.proxyPort, path: "/stream/l") }
        for c in clients { _ = try #require(try c.next(named: "chunk", timeout: .seconds(10))) }
        clients[0].close()
        clients[1].close(reset: true)
        let shape = try StreamShape(try clients[2].readToEnd(timeout: .seconds(10)), upstreams: 1)
        #expect(try shape.text(of: 0) == String(decoding: OriginBody.ascii.slice(offset: 0, count: 3000), as: UTF8.self))
        #expect(try shape.end(of: 0)?.int("bytes") == 3000)
        let stats = try cluster.originStatsWhenIdle()
        #expect(stats.fetchRequests == 1)
        #expect(stats.int("bodiesAbandoned") == 0, "the fetch went on to its end: \(stats)")
    }

    /// Three streams on a long trickle: while one remains the fetch goes on; when the last
    /// leaves, the fetch is cancelled at once (the origin sees its body abandoned) and nothing
    /// is in flight or held any more.
    @Test func lastReaderLeavingCancelsTheFetch() throws {
        // 1 MB at 20 kB/s: the fetch would run for 50 s.
        let cluster = try TestCluster(routes: ["m": ["/bytes/1000000?rate=20000&chunk=1000"]], prefix: 500_000) { config in
            config.coalesce("m")
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let clients = try (0..<3).map { _ in try SSEClient.open(port: cluster.proxyPort, path: "/stream/m") }
        for c in clients { _ = try #require(try c.next(named: "chunk", timeout: .seconds(10))) }
        clients[0].close()
        clients[1].close(reset: true)
        // The remaining reader still gets live bytes, and the origin's response goes on.
        for _ in 0..<3 { _ = try #require(try clients[2].next(named: "chunk", timeout: .seconds(5))) }
        var stats = try cluster.originStats()
        #expect(stats.int("responsesInProgress") == 1 && stats.int("bodiesAbandoned") == 0, "\(stats)")
        let held = try cluster.coalescing().bytesHeld
        #expect(held > 0, "the fetch holds what it read")
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_transfers_in_flight") == 1)

        clients[2].close()
        let cancelled = try waitUntil(timeout: .seconds(5)) {
            stats = try cluster.originStats()
            return stats.int("bodiesAbandoned") == 1 && stats.int("responsesInProgress") == 0
        }
        #expect(cancelled != nil, "the origin saw the body abandoned: \(stats)")
        let freed = try waitUntil(timeout: .seconds(5)) {
            let metrics = try cluster.metrics()
            return metricValue(metrics, "streamproxy_upstream_transfers_in_flight") == 0
                && metricValue(metrics, "streamproxy_coalesced_bytes_held") == 0
        }
        let figures = try cluster.coalescing()
        #expect(freed != nil, "in flight and held back to 0: \(figures)")
        #expect(stats.fetchRequests == 1)
        print("last reader leaving: origin saw the body abandoned \(cancelled.map { "\($0)" } ?? "never") after the close")
    }

    /// With cacheFor 2 s a completed fetch serves a stream that starts right after it (its head
    /// says cached, same bytes, no request); a stream that starts after the window fetches anew,
    /// and once that fetch's own window passed nothing is held. (The window is long enough for
    /// the second stream to start within it on a loaded machine; the third starts well after.)
    @Test func cacheForServesCompletedFetchesWithinItsWindow() throws {
        let cluster = try TestCluster(routes: ["e": ["/bytes/2000"]], prefix: 2000) { config in
            config.coalesce("e", cacheFor: 2)
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let a = try StreamShape(try cluster.stream("/stream/e").events, upstreams: 1)
        let b = try StreamShape(try cluster.stream("/stream/e").events, upstreams: 1)
        let full = String(decoding: OriginBody.ascii.slice(offset: 0, count: 2000), as: UTF8.self)
        #expect(try a.shared(of: 0) == "started")
        #expect(try b.shared(of: 0) == "cached")
        #expect(try a.text(of: 0) == full && b.text(of: 0) == full)
        #expect(try b.end(of: 0)?.int("bytes") == 2000 && b.end(of: 0)?.bool("truncated") == false)
        #expect(try cluster.originStats().fetchRequests == 1)
        #expect(try cluster.coalescing().bytesHeld == 2000, "the completed fetch is held for its window")

        // At least 2.5 s after A's fetch completed (its done came after it): the window is over.
        usleep(2_500_000)
        let c = try StreamShape(try cluster.stream("/stream/e").events, upstreams: 1)
        #expect(try c.shared(of: 0) == "started")
        #expect(try c.text(of: 0) == full)
        #expect(try cluster.originStats().fetchRequests == 2)
        let figures = try cluster.coalescing()
        #expect(figures.fetches == [2] && figures.cacheHits == [1] && figures.joins == [0], "\(figures)")
        let expired = try waitUntil(timeout: .seconds(5)) { try cluster.coalescing().bytesHeld == 0 }
        #expect(expired != nil, "a fetch past its window is freed")
    }
}
