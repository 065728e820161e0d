import Foundation
import Testing
@testable import StreamProxy

/// Requests that abuse the server (PRODUCT.md §3): each gets its status or a close, in time, and
/// the server keeps serving.
@Suite(.serialized)
struct RequestAbuseTests {
    /// Oversized request lines and headers, oversized bodies and garbage each get their status
    /// or a clean close, and the server keeps serving.
    @Test func abusiveRequestsGetTheirStatusOrAClose() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
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

        #expect(try RawHTTPClient.get(port: port, path: "/healthz").status == 200)
    }

    /// Slowloris: a client trickling its request headers, a byte every 20 ms, is cut at the
    /// requestHeaderTimeout of 0.5 s after it connected: not before, and not much later (the
    /// bytes keep arriving, so no read timeout can be what cuts it).
    @Test func tricklingHeadersAreCutAtTheHeaderDeadline() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]]) { c in c.requestHeaderTimeout = 0.5 }
        defer { cluster.stop() }
        let socket = try RawSocket(port: cluster.proxyPort, deadline: .now + .seconds(5))
        defer { socket.close() }
        let connected = ContinuousClock.now
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "y", count: 500))\r\n\r\n".utf8)
        var cut: Duration?
        var answer: [UInt8] = []
        trickle: for byte in request {
            guard try socket.sendAll([byte], deadline: .now + .seconds(1)) else {
                cut = .now - connected
                break
            }
            switch try socket.receive(deadline: .now + .milliseconds(20)) {
            case .timedOut: continue
            case .closed, .reset:
                cut = .now - connected
                break trickle
            case let .bytes(bytes):
                answer += bytes
            }
        }
        #expect(answer.isEmpty, "no answer to a request that never completed: \(String(decoding: answer, as: UTF8.self))")
        let at = try #require(cut, "the trickling client was never cut (\(request.count) bytes over \(ContinuousClock.now - connected))")
        // libevent schedules the deadline from its loop's cached time, which can be a few ms old:
        // allow it to fire that much early. Without the deadline the request would have been
        // answered after \(request.count) × 20 ms, over 10 s.
        #expect(at >= .milliseconds(450) && at < .milliseconds(900), "cut \(at) after connecting; the deadline is 0.5 s")
        #expect(try RawHTTPClient.get(port: cluster.proxyPort, path: "/healthz").status == 200)
    }
}
