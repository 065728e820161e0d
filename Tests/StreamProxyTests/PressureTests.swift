import EventLoop
import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// The bounds of PRODUCT.md §3 and §8 under pressure (issue 3): each test fails without the
/// mechanism it names.
@Suite(.serialized)
struct PressureTests {
    /// A client that stops reading gets at most streamBuffer (+ one event) queued; its upstreams
    /// are paused (the origin's sending stalls); a normal client beside it is served; and when
    /// it reads again it gets every byte, in order.
    @Test func slowClientIsHeldToItsBufferAndLosesNothing() throws {
        let size = 64 << 20, prefix = 4 << 20
        let cluster = try TestCluster(routes: ["big": Array(repeating: "/bytes/\(size)", count: 5), "small": ["/bytes/1024"]],
                                      prefix: prefix) { c in
            c.maxPrefix = 8 << 20
        }
        defer { cluster.stop() }
        let slow = try SSEClient.open(port: cluster.proxyPort, path: "/stream/big", receiveBufferSize: 4096)
        #expect(try slow.next()?.event == "open")

        let paused = try waitUntil(timeout: .seconds(10)) {
            metricValue(try cluster.metrics(), "streamproxy_stream_pauses_total") >= 1
        }
        #expect(paused != nil, "the slow client's upstreams were paused")
        var mostQueued = 0.0
        for _ in 0..<20 {
            mostQueued = max(mostQueued, metricValue(try cluster.metrics(), "streamproxy_client_queued_bytes"))
            usleep(25_000)
        }
        #expect(mostQueued > 0)
        #expect(mostQueued <= Double(cluster.config.streamBuffer + 64 * 1024), "queued \(mostQueued) bytes")

        let before = try #require(try cluster.originStats().int("bodyBytesSent"))
        usleep(300_000)
        let after = try #require(try cluster.originStats().int("bodyBytesSent"))
        #expect(before == after, "the origin's sending stalls while the client does not read")
        #expect(after < 5 * size / 2)

        let (_, normal, _) = try cluster.stream("/stream/small")
        #expect(try StreamShape(normal, upstreams: 1).done().int("ok") == 1)

        let events = try slow.readToEnd(timeout: .seconds(60))
        let shape = try StreamShape(events, upstreams: 5)
        let expected = String(decoding: OriginBody.ascii.slice(offset: 0, count: prefix), as: UTF8.self)
        for i in 0..<5 {
            #expect(try shape.text(of: i) == expected, "upstream \(i)'s prefix arrived whole and in order")
            #expect(try shape.end(of: i)?.int("bytes") == prefix)
        }
        #expect(metricValue(try cluster.metrics(), "streamproxy_client_queued_bytes") == 0)
    }

    /// A client that leaves mid-stream: every upstream socket to the origin is closed and no
    /// transfer is left in flight.
    @Test func clientLeavingCancelsItsUpstreams() throws {
        let cluster = try TestCluster(routes: ["trickle": Array(repeating: "/bytes/1000000?rate=20000", count: 5)], prefix: 1 << 20)
        defer { cluster.stop() }
        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/trickle")
        for _ in 0..<5 { _ = try #require(try client.next(named: "head")) }
        #expect(try cluster.originStats().int("responsesInProgress") == 5)
        #expect(metricValue(try cluster.metrics(), "streamproxy_upstream_transfers_in_flight") == 5)

        client.close()
        let elapsed = try waitUntil(timeout: .seconds(2)) {
            try cluster.originStats().int("responsesInProgress") == 0
                && metricValue(try cluster.metrics(), "streamproxy_upstream_transfers_in_flight") == 0
        }
        #expect(elapsed != nil, "upstreams are stopped when the client leaves")
        #expect(metricValue(try cluster.metrics(), "streamproxy_clients_gone_total") == 1)
        #expect(metricValue(try cluster.metrics(), "streamproxy_streams_open") == 0)
        print("client left: upstreams closed after \(elapsed.map { "\($0)" } ?? "-")")
    }

    /// At maxStreams, a new stream gets 503 with Retry-After and a JSON body at once, while
    /// /healthz and /metrics still answer.
    @Test func streamsBeyondMaxStreamsGet503() throws {
        let cluster = try TestCluster(routes: ["stall": ["/stall"]]) { c in
            c.maxStreams = 50
            c.maxConnections = 100
            c.maxConnectionsPerHost = 100
            c.readTimeout = 60
            c.poolTimeout = 60
        }
        defer { cluster.stop() }
        var clients: [SSEClient] = []
        var rejected = 0
        for _ in 0..<60 {
            let c = try SSEClient.open(port: cluster.proxyPort, path: "/stream/stall")
            if c.head.status == 503 {
                rejected += 1
                #expect(c.head.header("Retry-After") == "1")
                let body = try jsonObject(String(decoding: try c.reader.readAll(timeout: .seconds(5)), as: UTF8.self))
                #expect(body.string("error") == "too many streams")
            } else {
                #expect(c.head.status == 200)
                clients.append(c)
            }
        }
        #expect(rejected == 10)
        #expect(clients.count == 50)
        #expect(try RawHTTPClient.get(port: cluster.proxyPort, path: "/healthz").status == 200)
        #expect(metricValue(try cluster.metrics(), "streamproxy_streams_open") == 50)
        #expect(metricValue(try cluster.metrics(), "streamproxy_streams_rejected_total") == 10)
        for c in clients { c.close() }
        #expect(try waitUntil(timeout: .seconds(5)) { metricValue(try cluster.metrics(), "streamproxy_streams_open") == 0 } != nil)
    }

    /// Two workers share maxConnections=4: the origin never sees more than 4 connections at
    /// once, every fetch completes, and both workers serve streams.
    @Test func workersShareTheConnectionLimits() throws {
        let cluster = try TestCluster(routes: ["w": Array(repeating: "/delay/20", count: 5)], prefix: 2048, workers: 2) { c in
            c.maxConnections = 4
            c.maxConnectionsPerHost = 4
        }
        defer { cluster.stop() }
        try cluster.resetOriginStats()
        let results = Results()
        let port = cluster.proxyPort
        DispatchQueue.concurrentPerform(iterations: 16) { _ in
            do {
                let (_, events, _) = try readSSE(port: port, path: "/stream/w", timeout: .seconds(30))
                results.add(try jsonObject(events.last!.data).int("ok") ?? -1)
            } catch {
                results.add(-1)
            }
        }
        #expect(results.values == Array(repeating: 5, count: 16))
        let stats = try cluster.originStats()
        #expect(try #require(stats.int("requests")) >= 80)
        #expect(try #require(stats.int("peakConnections")) <= 4, "\(stats)")
        // Each worker holds its share (2 + 2) of the limit.
        let metrics = try cluster.metrics()
        #expect(metricValue(metrics, "streamproxy_upstream_connections_open_max") <= 4)
        #expect(metricValue(metrics, "streamproxy_streams_total", labels: ["worker": "0"]) > 0)
        #expect(metricValue(metrics, "streamproxy_streams_total", labels: ["worker": "1"]) > 0)
    }}
