import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Coalesced upstream fetches (issue 12) over real sockets: concurrent streams of a coalesced
/// route share one fetch per upstream URL on their worker, and get the bytes a fetch of their
/// own would have given them.
@Suite(.serialized)
struct CoalescingTests {
    /// 100 streams opened together on a coalesced route of 5 slow upstreams, with 2 workers:
    /// each worker that served streams fetched each upstream once (5 fetches), the origin saw
    /// only those requests, and every stream carries the text, byte count and truncation of a
    /// stream of an uncoalesced route with the same URLs, including a UTF-8 body whose prefix
    /// ends inside a character.
    @Test func hundredStreamsMakeOneFetchPerUpstreamPerWorker() throws {
        let pattern = OriginBody.utf8Pattern
        // Cut the prefix 2 bytes into the 4-byte U+1D11E (𝄞) of the eleventh repetition.
        let clef = Array("𝄞".utf8)
        let first = try #require(pattern.indices.first { pattern[$0...].starts(with: clef) })
        let prefix = 10 * pattern.count + first + 2
        // Slow enough that all 100 streams are open before any upstream answers, even on a
        // loaded machine (opening them takes some 50 ms alone).
        let delay = 2000
        let upstreams = [
            "/bytes/3000?delay=\(delay)",
            "/utf8/5000?delay=\(delay)&chunk=7",
            "/utf8/\(5 * pattern.count)?delay=\(delay)",  // ends within the prefix
            "/bytes/100000?delay=\(delay)&chunked=1",
            "/utf8/3000?delay=\(delay)&chunk=100&rate=20000",
        ]
        let cluster = try TestCluster(routes: ["c": upstreams, "u": upstreams], prefix: prefix, workers: 2) { config in
            config.coalesce("c")
            config.maxConnectionsPerHost = 20
        }
        defer { cluster.stop() }

        // The reference: the same upstreams, fetched by one stream of its own.
        let reference = try StreamShape(try cluster.stream("/stream/u").events, upstreams: 5)
        let cut = try #require(String(validating: OriginBody.utf8.slice(offset: 0, count: prefix - 2), as: UTF8.self))
        #expect(try reference.text(of: 1) == cut, "the reference cuts before the split character")
        #expect(try reference.end(of: 1)?.int("bytes") == prefix - 2)
        #expect(try reference.end(of: 2)?.bool("truncated") == false)
        for i in 0..<5 { #expect(try reference.shared(of: i) == nil, "an uncoalesced route says nothing of sharing") }

        let before = try cluster.coalescing()
        #expect(before.fetches == [0, 0] && before.joins == [0, 0])
        try cluster.resetOriginStats()
        let opening = ContinuousClock.now
        var clients: [SSEClient] = []
        for _ in 0..<100 {
            let c = try SSEClient.open(port: cluster.proxyPort, path: "/stream/c", timeout: .seconds(30))
            #expect(c.head.status == 200)
            clients.append(c)
        }
        let opened = ContinuousClock.now - opening
        var started = Array(repeating: 0, count: 5)
        for (n, c) in clients.enumerated() {
            let shape = try StreamShape(try c.readToEnd(timeout: .seconds(30)), upstreams: 5)
            for i in 0..<5 {
                #expect(try shape.text(of: i) == reference.text(of: i), "stream \(n), upstream \(i): text differs")
                let end = try #require(try shape.end(of: i), "stream \(n), upstream \(i) ends")
                let want = try #require(try reference.end(of: i))
                #expect(end.int("bytes") == want.int("bytes") && end.bool("truncated") == want.bool("truncated"),
                        "stream \(n), upstream \(i): \(end) vs \(want)")
                let shared = try shape.shared(of: i)
                #expect(shared == "started" || shared == "joined", "stream \(n), upstream \(i): shared \(shared ?? "nil")")
                if shared == "started" { started[i] += 1 }
            }
            #expect(try shape.done().int("ok") == 5)
            c.close()
        }

        let after = try cluster.coalescing()
        let servedBy = (0..<2).filter { after.streams[$0] > before.streams[$0] }
        #expect(!servedBy.isEmpty)
        let note = "opening 100 streams took \(opened) (upstreams answer after \(delay) ms); \(after)"
        for w in 0..<2 {
            #expect(after.fetches[w] == (servedBy.contains(w) ? 5 : 0), "worker \(w): \(note)")
            #expect(after.joins[w] == (after.streams[w] - before.streams[w]) * 5 - after.fetches[w], "worker \(w): \(note)")
        }
        #expect(started == Array(repeating: servedBy.count, count: 5), "one stream per worker started each fetch: \(note)")
        let stats = try cluster.originStatsWhenIdle()
        let byURL = stats.requestsByTarget
        #expect(byURL.count == 5 && byURL.values.allSatisfy { $0 == servedBy.count }, "origin: \(byURL); \(note)")
        #expect(after.bytesHeld == 0, "nothing is held once every stream ended (no cacheFor)")
    }

    /// A stream that opens while a trickling fetch is part-way through joins it: it gets its
    /// head marked joined and every byte from the start, and the origin sees one request.
    @Test func lateJoinerGetsTheEarlyBytes() throws {
        // 4000 bytes at 4000 B/s in 200-byte writes: about a second of trickle.
        let cluster = try TestCluster(routes: ["t": ["/bytes/4000?rate=4000&chunk=200"]], prefix: 4000) { config in
            config.coalesce("t")
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let early = try SSEClient.open(port: cluster.proxyPort, path: "/stream/t")
        // The origin writes 64 bytes each 16 ms: wait for 4 of them.
        var earlyBytes = 0
        while earlyBytes < 256, let e = try early.next(timeout: .seconds(10)) {
            #expect(e.event != "end", "the fetch is still running when the second stream opens")
            if e.event == "chunk" { earlyBytes += try #require(e.json().string("text")).utf8.count }
        }
        let late = try SSEClient.open(port: cluster.proxyPort, path: "/stream/t")
        let lateShape = try StreamShape(try late.readToEnd(timeout: .seconds(10)), upstreams: 1)
        let earlyShape = try StreamShape(try early.readToEnd(timeout: .seconds(10)), upstreams: 1)
        let full = String(decoding: OriginBody.ascii.slice(offset: 0, count: 4000), as: UTF8.self)
        #expect(try earlyShape.shared(of: 0) == "started")
        #expect(try lateShape.shared(of: 0) == "joined")
        #expect(try earlyShape.text(of: 0) == full)
        #expect(try lateShape.text(of: 0) == full, "the late joiner gets the bytes sent before it joined")
        #expect(try lateShape.end(of: 0)?.int("bytes") == 4000)
        // Its first chunk holds, at once, at least the bytes the first stream had read before it
        // opened (a fetch of its own would start with the origin's one 64-byte write).
        let firstLate = try #require(lateShape.byUpstream[0]?.first { $0.event == "chunk" }?.json().string("text"))
        #expect(firstLate.utf8.count >= earlyBytes, "first chunk of the joiner: \(firstLate.utf8.count) bytes, \(earlyBytes) before it")
        #expect(try cluster.originStatsWhenIdle().fetchRequests == 1)
        let figures = try cluster.coalescing()
        #expect(figures.fetches == [1] && figures.joins == [1], "\(figures)")
    }

    /// A stream needing a longer prefix than the running fetch holds starts its own fetch; one
    /// needing a shorter prefix joins a running one.
    @Test func longerPrefixFetchesAnew() throws {
        let cluster = try TestCluster(routes: ["p": ["/bytes/5000?delay=800"]], prefix: 1024) { config in
            config.coalesce("p")
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let short = try SSEClient.open(port: cluster.proxyPort, path: "/stream/p?prefix=100")
        let long = try SSEClient.open(port: cluster.proxyPort, path: "/stream/p?prefix=1000")
        let shorter = try SSEClient.open(port: cluster.proxyPort, path: "/stream/p?prefix=50")
        for (client, prefix, shared) in [(short, 100, "started"), (long, 1000, "started"), (shorter, 50, "joined")] {
            let shape = try StreamShape(try client.readToEnd(timeout: .seconds(10)), upstreams: 1)
            #expect(try shape.shared(of: 0) == shared, "prefix \(prefix)")
            #expect(try shape.text(of: 0) == String(decoding: OriginBody.ascii.slice(offset: 0, count: prefix), as: UTF8.self),
                    "prefix \(prefix)")
            #expect(try shape.end(of: 0)?.int("bytes") == prefix)
            #expect(try shape.end(of: 0)?.bool("truncated") == true)
        }
        #expect(try cluster.originStatsWhenIdle().fetchRequests == 2, "prefix 1000 fetched anew, prefix 50 joined")
        let figures = try cluster.coalescing()
        #expect(figures.fetches == [2] && figures.joins == [1], "\(figures)")
    }
}
