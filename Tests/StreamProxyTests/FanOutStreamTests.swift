import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// The fan-out stream end to end: real origin, real proxy, real sockets (issue 2).
@Suite(.serialized)
struct FanOutStreamTests {
    /// 5 upstreams of 1 KiB with prefix 100: open, 5 heads, exactly 100 bytes of text per
    /// upstream, 5 truncated ends, done — in a well-formed SSE stream.
    @Test func fiveUpstreamsForwardExactlyTheirPrefix() throws {
        let cluster = try TestCluster(routes: ["five": Array(repeating: "/bytes/1024", count: 5)], prefix: 100)
        defer { cluster.stop() }
        let (head, events, _) = try cluster.stream("/stream/five")
        #expect(head.status == 200)
        #expect(head.header("Content-Type") == "text/event-stream; charset=utf-8")
        #expect(head.header("Cache-Control") == "no-cache")
        #expect(head.header("X-Accel-Buffering") == "no")
        #expect(head.isChunked)

        let shape = try StreamShape(events, upstreams: 5)
        let open = try events[0].json()
        #expect(open.string("route") == "five")
        #expect(open.int("prefix") == 100)
        #expect(open.objects("upstreams")?.count == 5)
        #expect(events.filter { $0.event == "head" }.count == 5)
        let expected = String(decoding: OriginBody.ascii.slice(offset: 0, count: 100), as: UTF8.self)
        for i in 0..<5 {
            #expect(try shape.text(of: i) == expected)
            let end = try #require(try shape.end(of: i))
            #expect(end.int("bytes") == 100)
            #expect(end.bool("truncated") == true)
            let head = try #require(shape.byUpstream[i]?.first { $0.event == "head" }).json()
            #expect(head.int("status") == 200)
            #expect(head.string("contentType") == "text/plain")
            #expect(head.double("ttfbMs") != nil)
        }
        let done = try shape.done()
        #expect(done.int("ok") == 5)
        #expect(done.int("failed") == 0)
    }

    /// The same stream read by a real `curl -N` subprocess.
    @Test func curlReadsTheStream() throws {
        let cluster = try TestCluster(routes: ["five": Array(repeating: "/bytes/1024", count: 5)], prefix: 100)
        defer { cluster.stop() }
        let result = try readSSEWithCurl(url: "http://127.0.0.1:\(cluster.proxyPort)/stream/five", timeout: .seconds(20))
        #expect(result.exitCode == 0, "curl failed: \(result.stderr)")
        let shape = try StreamShape(result.events, upstreams: 5)
        for i in 0..<5 { #expect(try shape.text(of: i).utf8.count == 100) }
        #expect(try shape.done().int("ok") == 5)
    }

    /// 5 upstreams of 100 MiB with prefix 1 KiB: the stream completes, and the origin sent
    /// only a small fraction of each body (the rest was never downloaded).
    @Test func hugeBodiesAreCutAfterThePrefix() throws {
        let size = 100 * 1024 * 1024
        let cluster = try TestCluster(routes: ["huge": Array(repeating: "/bytes/\(size)", count: 5)], prefix: 1024)
        defer { cluster.stop() }
        let started = ContinuousClock.now
        let (_, events, _) = try cluster.stream("/stream/huge")
        let elapsed = started.duration(to: .now)
        let shape = try StreamShape(events, upstreams: 5)
        for i in 0..<5 {
            #expect(try shape.end(of: i)?.int("bytes") == 1024)
            #expect(try shape.end(of: i)?.bool("truncated") == true)
        }
        // Once the origin has seen every connection close, read what it sent.
        let stats = try cluster.originStatsWhenIdle()
        #expect(stats.int("responsesInProgress") == 0)
        #expect(stats.int("bodiesAbandoned") == 5)
        let sent = try #require(stats.int("bodyBytesSent"))
        // Socket buffers let a few MiB through before the cut is seen; 10% of 500 MiB is 50 MiB.
        #expect(sent < 5 * size / 10, "origin sent \(sent) bytes of \(5 * size)")
        print("huge bodies: stream done in \(elapsed), origin sent \(sent) of \(5 * size) bytes")
    }

    /// Upstream delays 500..100 ms: headers and `open` come before any upstream answers (the
    /// quickest answers 100 ms after the request, so `open` must lead the first `head` by most of
    /// that), `end` events come in completion order, and `order=sequential` gives index order.
    @Test func eventsFollowCompletionOrSequentialOrder() throws {
        let delays = [500, 400, 300, 200, 100]
        let cluster = try TestCluster(routes: ["delays": delays.map { "/delay/\($0)" }], prefix: 64)
        defer { cluster.stop() }

        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/delays")
        let open = try #require(try client.next())
        #expect(open.event == "open")
        let events = try client.readToEnd(timeout: .seconds(10))
        let shape = try StreamShape(events, upstreams: 5)
        let firstHead = try #require(events.first { $0.event == "head" })
        #expect(open.receivedAt + .milliseconds(50) < firstHead.receivedAt,
                "open at \(open.receivedAt), first head at \(firstHead.receivedAt)")
        let endOrder = try events.filter { $0.event == "end" }.map { try $0.json().int("i") }
        #expect(endOrder == [4, 3, 2, 1, 0])
        #expect(try shape.done().int("ok") == 5)

        let (_, sequential, _) = try cluster.stream("/stream/delays?order=sequential")
        let seqShape = try StreamShape(sequential, upstreams: 5)
        let indices = try sequential.dropFirst().dropLast().map { try #require($0.json().int("i")) }
        #expect(indices == indices.sorted(), "sequential order gives upstream 0's events first, then 1's, ...")
        let seqEnds = try sequential.filter { $0.event == "end" }.map { try $0.json().int("i") }
        #expect(seqEnds == [0, 1, 2, 3, 4])
        for i in 0..<5 { #expect(try seqShape.text(of: i).utf8.count == 64) }
    }

    /// Each fault ends its upstream with its own error kind while the good upstream completes,
    /// and `done` counts them.
    @Test func faultsEndAsTypedErrorsWhileOthersComplete() throws {
        let upstreams = [
            "/bytes/512",
            "http://127.0.0.1:\(refusedPort())/x",
            "http://no-such-host.invalid/x",
            "/stall",
            "/reset/300",
            "/malformed",
            "/redirect-loop",
        ]
        let cluster = try TestCluster(routes: ["faults": upstreams], prefix: 4096) { c in
            c.readTimeout = 1
        }
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/faults")
        let shape = try StreamShape(events, upstreams: upstreams.count)
        #expect(try shape.end(of: 0)?.int("bytes") == 512)
        #expect(try shape.end(of: 0)?.bool("truncated") == false)
        let expectedKinds = [1: "connect", 2: "dns", 3: "timeout", 4: "reset", 5: "protocol", 6: "protocol"]
        // Each fault's own libcurl result, told apart by its message (unclassified codes are
        // `internal`, never `protocol`).
        let expectedMessages = [5: "HTTP/0.9", 6: "redirects followed"]
        for (i, kind) in expectedKinds {
            let error = try #require(try shape.error(of: i), "upstream \(i) should fail")
            #expect(error.string("kind") == kind, "upstream \(i): \(error)")
            #expect(error.string("url") == (try events[0].json().objects("upstreams")?[i].string("url")))
            let message = error.string("message") ?? ""
            #expect(!message.isEmpty)
            if let part = expectedMessages[i] { #expect(message.contains(part), "upstream \(i): \(message)") }
        }
        // The reset upstream forwarded what arrived before the reset.
        #expect(try shape.text(of: 4).utf8.count == 300)
        let done = try shape.done()
        #expect(done.int("ok") == 1)
        #expect(done.int("failed") == 6)
    }

    /// A redirect chain within the limit is followed; the head is the final response's.
    @Test func redirectChainsAreFollowed() throws {
        let cluster = try TestCluster(routes: ["r": ["/redirect/3"]], prefix: 10)
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/r")
        let shape = try StreamShape(events, upstreams: 1)
        let heads = events.filter { $0.event == "head" }
        #expect(heads.count == 1)
        #expect(try heads.first?.json().int("status") == 200)
        #expect(try shape.text(of: 0).utf8.count == 10)
    }

    /// An upstream's 4xx/5xx is not an error: its status is in `head`, its body forwarded.
    @Test func upstreamErrorStatusesAreForwarded() throws {
        let cluster = try TestCluster(routes: ["s": ["/status/503", "/status/404"]], prefix: 1000)
        defer { cluster.stop() }
        let (_, events, _) = try cluster.stream("/stream/s")
        let shape = try StreamShape(events, upstreams: 2)
        let statuses = try events.filter { $0.event == "head" }.map { try $0.json().int("i")! * 1000 + $0.json().int("status")! }
        #expect(Set(statuses) == [503, 1404])
        #expect(try shape.done().int("ok") == 2)
        #expect(try shape.end(of: 0)?.int("bytes") == 64)
    }
}
