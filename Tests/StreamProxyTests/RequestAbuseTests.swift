import Foundation
import Testing
import StreamTestSupport
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
        #expect(longLine.contains(#"{"error":"request line too long","limit":8192}"#))
        let bigHeaders = try send(Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 20_000))\r\n\r\n".utf8))
        #expect(bigHeaders.hasPrefix("HTTP/1.1 431"))
        let bigBody = try send(Array("POST /stream/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n".utf8))
        #expect(bigBody.hasPrefix("HTTP/1.1 413"))
        #expect(bigBody.contains(#"{"error":"request body too large","limit":65536}"#))
        let garbage = try send([0, 1, 2, 255, 13, 10, 13, 10])
        #expect(garbage.hasPrefix("HTTP/1.1 400"))

        #expect(try RawHTTPClient.get(port: port, path: "/healthz").status == 200)
    }

    /// PRODUCT.md §4: an oversized request line or header block gets 414 / 431 with a JSON body
    /// and a closed connection whatever its size: 80 KB, past the point where evhttp would answer
    /// with its own HTML 400 page, and sent in one write or in pieces. The whole request is
    /// taken (the client's send completes), the answer is complete, and the connection ends
    /// with a FIN.
    @Test func oversizedRequestsGetJSONAndACloseAtAnySize() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let port = cluster.proxyPort
        let k80 = 80 * 1024
        let cases: [(name: String, request: [UInt8], status: Int, error: String)] = [
            ("80 KB request line", Array("GET /stream/a?x=\(String(repeating: "a", count: k80)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
             414, "request line too long"),
            ("80 KB of headers", Array(("GET /stream/a HTTP/1.1\r\nHost: x\r\n"
                + (0..<80).map { "X-H\($0): \(String(repeating: "h", count: 1000))\r\n" }.joined() + "\r\n").utf8),
             431, "request headers too large"),
            ("one 80 KB header", Array("GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: k80))\r\n\r\n".utf8),
             431, "request headers too large"),
            ("a 64 KiB + 1 chunked body", Array("POST /stream/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n".utf8)
                + [UInt8](repeating: 0x61, count: 65_537) + Array("\r\n0\r\n\r\n".utf8),
             413, "request body too large"),
        ]
        for c in cases {
            for pieces in [1, 7] {
                let socket = try RawSocket(port: port, deadline: .now + .seconds(5))
                defer { socket.close() }
                let size = (c.request.count + pieces - 1) / pieces
                for start in stride(from: 0, to: c.request.count, by: size) {
                    let sent = try socket.sendAll(Array(c.request[start..<min(start + size, c.request.count)]), deadline: .now + .seconds(5))
                    #expect(sent, "\(c.name): the server took the whole request")
                    if pieces > 1 { usleep(2_000) }
                }
                var received: [UInt8] = []
                var end: RawSocket.Received?
                reading: while true {
                    switch try socket.receive(deadline: .now + .seconds(5)) {
                    case let .bytes(bytes): received += bytes
                    case let other:
                        end = other
                        break reading
                    }
                }
                let text = String(decoding: received, as: UTF8.self)
                let split = try #require(text.range(of: "\r\n\r\n"), "\(c.name) in \(pieces): \(text)")
                let head = try HTTPHead(parsing: Array(text[..<split.upperBound].utf8)[...])
                let body = String(text[split.upperBound...])
                #expect(head.status == c.status, "\(c.name) in \(pieces)")
                #expect(head.header("Content-Type") == "application/json", "\(c.name)")
                #expect(head.header("Connection") == "close", "\(c.name)")
                #expect(head.header("Content-Length") == String(body.utf8.count), "\(c.name): the whole body arrived")
                #expect(try jsonObject(body)["error"] as? String == c.error, "\(c.name): \(body)")
                let closed = if case .closed = end { true } else { false }
                #expect(closed, "\(c.name) in \(pieces): the connection ends with a FIN, not \(String(describing: end))")
            }
        }
        #expect(try RawHTTPClient.get(port: port, path: "/healthz").status == 200)
    }

    /// A request that breaks a limit behind one being answered on the same connection
    /// (pipelined) is answered after it: the first response whole, then the 431, then the close.
    @Test func anOversizedPipelinedRequestIsAnsweredAfterTheOneBeforeIt() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let first = Array("GET /stream/a HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let second = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 40_000))\r\n\r\n".utf8)
        let answer = String(decoding: try RawHTTPClient.send(port: cluster.proxyPort, raw: first + second, timeout: .seconds(10)), as: UTF8.self)
        let done = try #require(answer.range(of: "event: done"), "\(answer)")
        let rejected = try #require(answer.range(of: "HTTP/1.1 431 Request Header Fields Too Large\r\n"), "\(answer)")
        #expect(done.upperBound <= rejected.lowerBound, "the stream ends before the 431 starts")
        #expect(answer.hasSuffix(#"{"error":"request headers too large","limit":16384}"#))
    }

    /// The request deadline that bounds a rejected connection starts once the rejection is sent:
    /// a stream longer than requestHeaderTimeout with an oversized request pipelined behind it
    /// ends whole, and the 431 follows.
    @Test func aRejectionBehindALongStreamDoesNotCutIt() throws {
        let cluster = try TestCluster(routes: ["slow": ["/delay/1200"]]) { c in c.requestHeaderTimeout = 0.5 }
        defer { cluster.stop() }
        let first = Array("GET /stream/slow HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let second = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "b", count: 20_000))\r\n\r\n".utf8)
        let answer = String(decoding: try RawHTTPClient.send(port: cluster.proxyPort, raw: first + second, timeout: .seconds(10)), as: UTF8.self)
        #expect(answer.contains(#""bytes":1024,"truncated":"#), "the upstream's end arrived: \(answer.suffix(600))")
        let done = try #require(answer.range(of: "event: done"), "\(answer.suffix(600))")
        let rejected = try #require(answer.range(of: "HTTP/1.1 431 "), "\(answer.suffix(600))")
        #expect(done.upperBound <= rejected.lowerBound)
    }

    /// Complete requests pipelined before an oversized one, all in one write (so in one read of
    /// the server's), are each answered, in order, before the 414 and the close.
    @Test func requestsPipelinedBeforeAnOversizedOneAreAnsweredFirst() throws {
        let cluster = try TestCluster(routes: ["a": ["/bytes/10"]])
        defer { cluster.stop() }
        let valid = Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /routes HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n".utf8)
        let oversized = Array("GET /\(String(repeating: "a", count: 9000)) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let answer = String(decoding: try RawHTTPClient.send(port: cluster.proxyPort, raw: valid + oversized), as: UTF8.self)
        // Status lines, wherever they start (a body without a final CRLF runs into the next).
        let statuses = answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + ($0.components(separatedBy: "\r\n").first ?? "") }
        #expect(statuses == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 414 URI Too Long"], "\(answer)")
        #expect(answer.hasSuffix(#"{"error":"request line too long","limit":8192}"#))
        // The HEAD response has the length of the body it does not send.
        #expect(answer.contains("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"))
        #expect(!answer.contains(#""routes":"#), "no body for HEAD: \(answer)")
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
