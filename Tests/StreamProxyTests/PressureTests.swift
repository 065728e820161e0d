import EventLoop
import Foundation
import Testing
@testable import StreamProxy

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
    }

    /// The proxy's thread count is the same with 0 and with 1,000 open streams.
    @Test func threadCountDoesNotGrowWithStreams() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let proxy = try ProxyProcess(arguments: [
            "--workers", "2", "--route", "s=http://127.0.0.1:\(origin.info)/stall",
            "--max-connections", "2000", "--max-connections-per-host", "2000",
            "--read-timeout", "60s", "--pool-timeout", "60s",
        ])
        let idle = try #require(proxy.status("Threads"))
        var clients: [SSEClient] = []
        for _ in 0..<1000 {
            let c = try SSEClient.open(port: proxy.port, path: "/stream/s")
            #expect(c.head.status == 200)
            clients.append(c)
        }
        let metrics = try RawHTTPClient.get(port: proxy.port, path: "/metrics").bodyText
        #expect(metricValue(metrics, "streamproxy_streams_open") == 1000)
        let loaded = try #require(proxy.status("Threads"))
        #expect(loaded == idle, "threads: \(idle) idle, \(loaded) with 1000 streams")
        print("threads: \(idle) idle, \(loaded) with 1000 open streams; RSS \(proxy.status("VmRSS") ?? 0) kB")
        for c in clients { c.close() }
    }

    /// After 2,000 normal, abusive and disconnecting clients, the proxy's open descriptors
    /// return to their idle count.
    @Test func descriptorsReturnToIdleAfterAbuse() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let o = "http://127.0.0.1:\(origin.info)"
        let proxy = try ProxyProcess(arguments: [
            "--workers", "2",
            "--route", "ok=\(o)/bytes/1024,\(o)/delay/5",
            "--route", "slow=\(o)/bytes/1000000?rate=100000",
            "--keepalive-expiry", "1s", "--request-header-timeout", "3s",
        ])
        // Idle: once the health-check connection ProxyProcess made has been closed.
        var idle = proxy.openFDs()
        waitUntil(timeout: .seconds(5)) {
            usleep(200_000)
            let now = proxy.openFDs()
            defer { idle = now }
            return now == idle
        }
        let port = proxy.port
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for n in 0..<500 {
                let kind = (n + worker) % 7
                do {
                    try abusiveClient(kind: kind, port: port)
                } catch {
                    failures.add("kind \(kind): \(error)")
                }
            }
        }
        #expect(failures.all.isEmpty, "clients that should have been served were not: \(failures.all)")
        #expect(try RawHTTPClient.get(port: port, path: "/healthz").status == 200)
        let settled = waitUntil(timeout: .seconds(15)) { proxy.openFDs() == idle }
        #expect(settled != nil, "descriptors: \(idle) idle, \(proxy.openFDs()) after the burst: \(proxy.describeFDs())")
    }

    /// SIGTERM with 20 open streams: each ends with an `error` of kind shutdown for its unfinished
    /// upstream and a `done` marked shutdown; the process exits 0 within the grace period.
    @Test func sigtermEndsOpenStreamsAndExitsZero() throws {
        let origin = try startOrigin()
        defer { origin.stopAndJoin() }
        let o = "http://127.0.0.1:\(origin.info)"
        let proxy = try ProxyProcess(arguments: ["--route", "s=\(o)/bytes/100,\(o)/stall", "--shutdown-grace", "1s",
                                                 "--max-connections-per-host", "100"])
        var clients: [SSEClient] = []
        for _ in 0..<20 {
            let c = try SSEClient.open(port: proxy.port, path: "/stream/s")
            _ = try #require(try c.next(named: "end"))
            clients.append(c)
        }
        proxy.signal(SIGTERM)
        for c in clients {
            let events = try c.readToEnd(timeout: .seconds(5))
            let shape = try StreamShape(events, upstreams: 2)
            #expect(try shape.error(of: 1)?.string("kind") == "shutdown")
            #expect(try shape.done().bool("shutdown") == true)
        }
        #expect(proxy.waitForExit(timeout: .seconds(5)) == 0)
    }

    /// Slowloris, oversized request lines and headers, oversized bodies and garbage each get
    /// their status or a clean close, and the server keeps serving.
    @Test func abusiveRequestsGetTheirStatusOrAClose() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]]) { c in c.requestHeaderTimeout = 1 }
        defer { cluster.stop() }
        let port = cluster.proxyPort
        func send(_ raw: [UInt8]) throws -> String {
            String(decoding: try RawHTTPClient.send(port: port, raw: raw, timeout: .seconds(5)), as: UTF8.self)
        }
        let longLine = try send(Array("GET /\(String(repeating: "a", count: 10_000)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(longLine.hasPrefix("HTTP/1.1 414"))
        #expect(longLine.contains(#"{"error":"request line too long"}"#))
        let bigHeaders = try send(Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 20_000))\r\n\r\n".utf8))
        #expect(bigHeaders.hasPrefix("HTTP/1.1 431"))
        let hugeHeaders = try send(Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 100_000))\r\n\r\n".utf8))
        #expect(hugeHeaders.hasPrefix("HTTP/1.1 400"))
        let bigBody = try send(Array("POST /stream/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".utf8))
        #expect(bigBody.hasPrefix("HTTP/1.1 413"))
        let garbage = try send([0, 1, 2, 255, 13, 10, 13, 10])
        #expect(garbage.hasPrefix("HTTP/1.1 400"))

        // Slowloris: a header line every 300 ms; the server closes it at the 1 s deadline (long
        // before the 20 lines are sent).
        let socket = try RawSocket(port: port, deadline: .now + .seconds(5))
        defer { socket.close() }
        _ = try socket.sendAll(Array("GET / HTTP/1.1\r\n".utf8), deadline: .now + .seconds(5))
        var closedByServer = false
        for _ in 0..<20 {
            usleep(300_000)
            if try !socket.sendAll(Array("X-Slow: y\r\n".utf8), deadline: .now + .seconds(5)) {
                closedByServer = true
                break
            }
        }
        #expect(closedByServer, "the trickling client was cut off")
        #expect(try RawHTTPClient.get(port: port, path: "/healthz").status == 200)
    }
}

/// One client of the fd test's mix.
private func abusiveClient(kind: Int, port: UInt16) throws {
    switch kind {
    case 0:  // a normal stream, read to its end
        let (_, events, _) = try readSSE(port: port, path: "/stream/ok", timeout: .seconds(20))
        guard events.last?.event == "done" else { throw ProxyProcessError.didNotStart("no done") }
    case 1:  // leaves mid-stream
        let c = try SSEClient.open(port: port, path: "/stream/slow")
        _ = try c.next()
        c.close(reset: kind % 2 == 0)
    case 2:  // garbage
        _ = try? RawHTTPClient.send(port: port, raw: [0x16, 0x03, 0x01, 0x00, 13, 10, 13, 10], timeout: .seconds(5))
    case 3:  // oversized headers
        _ = try RawHTTPClient.send(port: port, raw: Array("GET / HTTP/1.1\r\nX: \(String(repeating: "z", count: 20_000))\r\n\r\n".utf8),
                                   timeout: .seconds(5))
    case 4:  // connects and drops
        try RawSocket(port: port, deadline: .now + .seconds(5)).close()
    case 5:  // half a request, then gone
        let socket = try RawSocket(port: port, deadline: .now + .seconds(5))
        _ = try socket.sendAll(Array("GET /stream/ok HTTP/1.1\r\nHo".utf8), deadline: .now + .seconds(5))
        socket.close()
    default:  // sends its request then half-closes; a clean close or a full answer are both fine
        let socket = try RawSocket(port: port, deadline: .now + .seconds(5))
        _ = try socket.sendAll(Array("GET /stream/ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8),
                               deadline: .now + .seconds(5))
        shutdown(socket.fd, Int32(SHUT_WR))
        while case .bytes = try socket.receive(deadline: .now + .seconds(5)) {}
        socket.close()
    }
}

/// Failures collected from concurrent work.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ v: String) { lock.lock(); items.append(v); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
}

/// Values collected from concurrent work.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func add(_ v: Int) { lock.lock(); items.append(v); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return items.sorted() }
}
