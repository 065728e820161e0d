import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Issue 12: the shared prefix is held once per fetch, whatever the number of joiners, in a
/// `stream-proxy serve` child process (its RSS is its own, not the test runner's).
@Suite(.serialized)
struct CoalescingMemoryTests {
    /// 1,000 clients join a 1 MiB prefix and do not read: the proxy holds 1 MiB per fetch, the
    /// origin got one request per worker at most, and the RSS grew by what the clients' stream
    /// buffers hold, not by 1,000 copies of the prefix. Clients that then read get the exact
    /// prefix; once all close, nothing is held and the descriptors are back to idle.
    @Test func thousandJoinersHoldOnePrefixPerFetch() throws {
        let clients = 1000
        let prefix = 1 << 20
        let workers = 2
        raiseOpenFileLimit(to: 4 * clients)
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let o = "http://127.0.0.1:\(origin.info)"
        // 2 MiB bodies with a Content-Length: the prefix is cut from a longer body. The delay
        // lets every client open before the first byte comes, so all of them join one fetch.
        let proxy = try ProxyProcess(arguments: [
            "--workers", "\(workers)", "--coalesce",
            "--route", "big@1MiB=\(o)/bytes/2097152?delay=4000",
            "--route", "warm@1MiB=\(o)/bytes/2097152",
        ])
        let port = proxy.port
        func metrics() throws -> String { try RawHTTPClient.get(port: port, path: "/metrics").bodyText }

        // Warm up (a whole 1 MiB stream through each path), then take the idle figures once the
        // health-check and warm-up connections are gone.
        for _ in 0..<2 { _ = try readSSE(port: port, path: "/stream/warm", timeout: .seconds(20)) }
        var idleFDs = proxy.openFDs()
        waitUntil(timeout: .seconds(5)) {
            usleep(200_000)
            let now = proxy.openFDs()
            defer { idleFDs = now }
            return now == idleFDs
        }
        #expect(try waitUntil(timeout: .seconds(5)) { metricValue(try metrics(), "streamproxy_coalesced_bytes_held") == 0 } != nil)
        let before = CoalescingFigures(try metrics(), workers: workers)
        _ = try RawHTTPClient.get(port: origin.info, path: "/stats/reset")
        let idleRSS = try #require(proxy.status("VmRSS")) * 1024

        let opening = ContinuousClock.now
        var open: [SSEClient] = []
        for _ in 0..<clients {
            let c = try SSEClient.open(port: port, path: "/stream/big", receiveBufferSize: 4096, timeout: .seconds(30))
            #expect(c.head.status == 200)
            open.append(c)
        }
        let opened = ContinuousClock.now - opening
        // The fetches hold their whole prefix once it has come.
        var after = before
        let filled = try waitUntil(timeout: .seconds(15)) {
            after = CoalescingFigures(try metrics(), workers: workers)
            let fetches = zip(after.fetches, before.fetches).map { $0 - $1 }.reduce(0, +)
            return fetches > 0 && after.bytesHeld == fetches * prefix
        }
        let fetches = zip(after.fetches, before.fetches).map { $0 - $1 }
        let joins = zip(after.joins, before.joins).map { $0 - $1 }
        let note = "opening \(clients) clients took \(opened); \(after)"
        #expect(filled != nil, "bytes held \(after.bytesHeld) for fetches \(fetches): \(note)")
        #expect(fetches.allSatisfy { $0 <= 1 }, "one fetch per worker at most: \(note)")
        #expect(fetches.reduce(0, +) + joins.reduce(0, +) == clients, "\(note)")
        #expect(after.bytesHeld == fetches.reduce(0, +) * prefix, "held once per fetch, not per joiner: \(note)")
        let stats = try RawHTTPClient.get(port: origin.info, path: "/stats").json()
        #expect(stats.requestsByTarget.values.allSatisfy { $0 <= workers }, "origin: \(stats)")

        // The RSS once every stream's buffer is full (the most its queue holds before its
        // reader is paused), the highest of a few samples.
        let streamBuffer = ProxyConfig().streamBuffer
        var queued = 0.0
        let full = try waitUntil(timeout: .seconds(10)) {
            queued = metricValue(try metrics(), "streamproxy_client_queued_bytes")
            return queued >= 0.9 * Double(clients * streamBuffer)
        }
        #expect(full != nil, "queued for the clients: \(Int(queued) >> 10) KiB")
        var rss = 0
        for _ in 0..<5 {
            rss = max(rss, try #require(proxy.status("VmRSS")) * 1024)
            usleep(200_000)
        }
        // Per client, its stream's queue: at most streamBuffer (64 KiB, the default) before its
        // reader is paused, plus 64 KiB of slack for the last 16 KiB piece as SSE JSON and the
        // connection's own state (evhttp connection and request, bufferevent, session). Per
        // worker, its one fetch's 1 MiB prefix. Plus 32 MiB for allocator arenas and what the
        // first streams touch. A copy of the prefix per joiner would be 1,000 MiB. (What the
        // kernel's socket buffers hold for the clients is not in the RSS.)
        let bound = clients * (streamBuffer + 64 * 1024) + workers * prefix + 32 * 1024 * 1024
        let grown = rss - idleRSS
        // A sanitized build (make test-asan / test-tsan; the child is built with this runner)
        // keeps freed memory in quarantine and shadow pages beside it, so its RSS says nothing
        // about what the proxy holds: there the bytes-held figure above is the check.
        let sanitized = dlsym(nil, "__asan_init") != nil || dlsym(nil, "__tsan_init") != nil
        if !sanitized {
            #expect(grown < bound, "RSS grew by \(grown >> 20) MiB with \(clients) joiners (bound \(bound >> 20) MiB)")
        }
        print("coalescing memory: \(clients) joiners of a 1 MiB prefix: RSS \(idleRSS >> 20) -> \(rss >> 20) MiB "
            + "(+\(grown >> 10) KiB, bound \(bound >> 10) KiB; \(Int(queued) >> 10) KiB queued for clients), held "
            + "\(after.bytesHeld) bytes, fetches \(fetches), origin requests \(stats.fetchRequests); opening took \(opened)")

        // The proxy's socket buffers, which grow to MiBs, take in the whole stream of a client
        // that does not read: so the other clients leave before three read to the end, which
        // would otherwise wait for 1,000 streams of 1 MiB each to be written.
        let readers = open.prefix(3)
        for c in open.dropFirst(readers.count) { c.close() }
        let expected = String(decoding: OriginBody.ascii.slice(offset: 0, count: prefix), as: UTF8.self)
        for c in readers {
            let shape = try StreamShape(try c.readToEnd(timeout: .seconds(20)), upstreams: 1)
            #expect(try shape.text(of: 0) == expected, "a joiner reads the exact prefix")
            #expect(try shape.end(of: 0)?.int("bytes") == prefix)
            #expect(try shape.end(of: 0)?.bool("truncated") == true)
            c.close()
        }
        let released = try waitUntil(timeout: .seconds(10)) {
            let m = try metrics()
            return metricValue(m, "streamproxy_coalesced_bytes_held") == 0 && metricValue(m, "streamproxy_streams_open") == 0
        }
        let last = CoalescingFigures(try metrics(), workers: workers)
        #expect(released != nil, "held and open back to 0: \(last)")
        let settled = waitUntil(timeout: .seconds(10)) { proxy.openFDs() == idleFDs }
        #expect(settled != nil, "descriptors: \(idleFDs) idle, \(proxy.openFDs()) after: \(proxy.describeFDs())")
        proxy.stop()
    }
}

/// Raises this process's soft RLIMIT_NOFILE to `wanted` (at most the hard limit), if lower; a
/// child process started later inherits it.
func raiseOpenFileLimit(to wanted: Int) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
    limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
