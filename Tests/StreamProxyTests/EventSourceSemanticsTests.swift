import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// What browser EventSource clients depend on (issue 4, PRODUCT.md §3 cors, §5).
@Suite(.serialized)
struct EventSourceSemanticsTests {
    /// `retry:` comes first; with heartbeat=1 and an upstream that answers after 3 s, at least
    /// two `: ping` comments arrive before its head.
    @Test func idleStreamsGetRetryAndHeartbeats() throws {
        let cluster = try TestCluster(routes: ["slow": ["/delay/3000"]], prefix: 10) { c in c.heartbeat = 1 }
        defer { cluster.stop() }
        let client = try SSEClient.open(port: cluster.proxyPort, path: "/stream/slow")
        _ = try #require(try client.next(named: "head", timeout: .seconds(10)))
        #expect(client.comments.filter { $0 == "ping" }.count >= 2, "comments before the head: \(client.comments)")
        #expect(client.parser.retry == 2000)
        #expect(String(decoding: client.raw.prefix(11), as: UTF8.self) == "retry: 2000")
        let rest = try client.readToEnd(timeout: .seconds(10))
        #expect(rest.last?.event == "done")
    }

    /// `Last-Event-ID: done` (an EventSource reconnecting after the end) gets 204, which stops
    /// it; any other id starts a fresh fan-out.
    @Test func lastEventIDDoneStopsReconnects() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let stop = try RawHTTPClient.get(port: cluster.proxyPort, path: "/stream/a", headers: [("Last-Event-ID", "done")])
        #expect(stop.status == 204)
        #expect(stop.body.isEmpty)
        let (head, events, _) = try cluster.stream("/stream/a", headers: [("Last-Event-ID", "7")])
        #expect(head.status == 200)
        #expect(events.first?.event == "open")
        #expect(events.last?.id == "done")
        #expect(metricValue(try cluster.metrics(), "streamproxy_streams_total") == 1)
    }

    /// An allowed Origin gets the grant (echoed, with Vary: Origin), a foreign one does not;
    /// preflights are answered for allowed origins and refused for others.
    @Test func corsGrantsOnlyConfiguredOrigins() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]]) { c in
            c.cors = ["https://app.example"]
            c.corsCredentials = true
        }
        defer { cluster.stop() }
        let port = cluster.proxyPort
        let allowed = try SSEClient.open(port: port, path: "/stream/a", headers: [("Origin", "https://app.example")])
        #expect(allowed.head.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(allowed.head.header("Access-Control-Allow-Credentials") == "true")
        #expect(allowed.head.header("Vary") == "Origin")
        _ = try allowed.readToEnd(timeout: .seconds(10))

        let foreign = try RawHTTPClient.get(port: port, path: "/routes", headers: [("Origin", "https://evil.example")])
        #expect(foreign.status == 200)
        #expect(foreign.header("Access-Control-Allow-Origin") == nil)

        let preflight = try RawHTTPClient.request(port: port, method: "OPTIONS", path: "/stream/a", headers: [
            ("Origin", "https://app.example"), ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "last-event-id"),
        ])
        #expect(preflight.status == 204)
        #expect(preflight.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(preflight.header("Access-Control-Allow-Methods")?.contains("GET") == true)
        #expect(preflight.header("Access-Control-Allow-Headers") == "last-event-id")

        let refused = try RawHTTPClient.request(port: port, method: "OPTIONS", path: "/stream/a", headers: [
            ("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET"),
        ])
        #expect(refused.status == 403)
        #expect(refused.header("Access-Control-Allow-Origin") == nil)
    }

    /// Without cors configured, no grant is given to anyone.
    @Test func noCorsConfiguredGrantsNothing() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let r = try RawHTTPClient.get(port: cluster.proxyPort, path: "/routes", headers: [("Origin", "https://app.example")])
        #expect(r.header("Access-Control-Allow-Origin") == nil)
    }

    /// An HTTP/1.0 client gets the whole stream, delimited by the connection's close.
    @Test func http10ClientsGetACloseDelimitedStream() throws {
        let cluster = try TestCluster(routes: ["u": ["/utf8/2000", "/bytes/300"]], prefix: 1000)
        defer { cluster.stop() }
        let r = try RawHTTPClient.get(port: cluster.proxyPort, path: "/stream/u", version: "1.0", timeout: .seconds(10))
        #expect(r.status == 200)
        #expect(!r.isChunked)
        #expect(r.header("Content-Length") == nil)
        var parser = SSEParser()
        let events = parser.feed(r.body)
        let shape = try StreamShape(events, upstreams: 2)
        #expect(try shape.done().int("ok") == 2)
        #expect(try !shape.text(of: 0).contains("\u{FFFD}"))
    }
}
