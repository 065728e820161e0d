import Foundation
import Testing
import StreamTestSupport

/// The raw client against `ScriptedHTTPServer`: framing, incremental delivery, timeouts.
@Suite struct RawHTTPClientTests {
    /// Runs `body` against a fresh server and always stops it.
    @discardableResult
    private func withServer<T>(
        _ handler: @escaping @Sendable (ScriptedConnection) -> Void,
        _ body: (UInt16) throws -> T
    ) throws -> T {
        let server = try ScriptedHTTPServer(handler: handler)
        defer { server.stop() }
        return try body(server.port)
    }

    /// A chunked SSE response in several flushes, with awkward splits.
    private static func sseScript(_ c: ScriptedConnection) {
        c.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n")
        c.writeChunk("retry: 1000\n\nevent: open\nid: 1\ndata: {\"route\":\"demo\"}\n\n")
        c.pause(milliseconds: 60)
        c.writeChunk(": ping\n\n")
        let event = Array("event: chunk\nid: 2\ndata: {\"text\":\"h€llo\"}\n\n".utf8)
        let euro = event.firstIndex(of: 0xE2)! + 1  // split inside "€"
        c.write("\(String(euro, radix: 16));ext=1\r")  // size line with an extension, split too
        c.pause(milliseconds: 20)
        c.write(Array("\n".utf8) + event[..<euro] + Array("\r".utf8))
        c.pause(milliseconds: 20)
        c.write(Array("\n".utf8))
        c.writeChunk(Array(event[euro...]))
        c.pause(milliseconds: 20)
        c.writeChunk("event: done\nid: done\ndata: {\"ok\":1}\n\n")
        c.write("0\r\nX-Trailer: t\r\n\r\n")
        c.waitForClientClose()  // the body's end must come from the framing, not from a close
    }

    @Test func readsChunkedSSEIncrementally() throws {
        try withServer(Self.sseScript) { port in
            let client = try SSEClient.open(port: port, path: "/stream")
            #expect(client.head.status == 200 && client.reader.isChunked)
            #expect(client.head.header("content-type") == "text/event-stream; charset=utf-8")
            let open = try #require(try client.next(timeout: .seconds(2)))
            #expect(open.event == "open" && open.id == "1")
            let chunk = try #require(try client.next(timeout: .seconds(2)))
            #expect(try chunk.json().string("text") == "h€llo")
            #expect(client.comments == ["ping"] && client.parser.retry == 1000)
            #expect(try client.next(named: "done", timeout: .seconds(2))?.id == "done")
            #expect(try client.next(timeout: .seconds(2)) == nil)
            #expect(!client.parser.hasPartialEvent && client.reader.isFinished)
        }
    }

    @Test func readSSEAndCurlAgree() throws {
        try withServer(Self.sseScript) { port in
            let result = try readSSE(port: port, path: "/stream", timeout: .seconds(3))
            #expect(result.head.status == 200)
            #expect(result.events.map(\.event) == ["open", "chunk", "done"])
            #expect(result.comments == ["ping"])
            let curl = try readSSEWithCurl(url: "http://127.0.0.1:\(port)/stream", timeout: .seconds(3))
            #expect(curl.exitCode == 0, "\(curl.stderr)")
            #expect(curl.events == result.events)
        }
    }

    @Test func contentLengthIsHonouredWithoutWaitingForClose() throws {
        try withServer({ c in
            c.write("HTTP/1.1 404 Not Found\r\ncontent-length: 14\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n{\"error\":\"no\"}")
            c.waitForClientClose()
        }) { port in
            let r = try RawHTTPClient.get(port: port, path: "/nope", timeout: .seconds(2))
            #expect(r.status == 404 && r.reason == "Not Found" && !r.isChunked)
            #expect(r.header("Content-Length") == "14" && r.headerValues("x-multi") == ["a", "b"])
            #expect(try r.json().string("error") == "no")
        }
    }

    @Test func http10CloseDelimitedBody() throws {
        try withServer({ c in
            c.write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + c.requestHead.prefix(15))
            c.pause(milliseconds: 20)
            c.write("|end")
        }) { port in
            let r = try RawHTTPClient.get(port: port, path: "/x", version: "1.0", timeout: .seconds(2))
            #expect(r.version == "HTTP/1.0" && r.bodyText == "GET /x HTTP/1.0|end")
        }
    }

    @Test func otherMethodsSendTheirBodyAndSkipInterimResponses() throws {
        try withServer({ c in
            let echo = c.requestHead + "\r\n\r\n" + String(decoding: c.requestBody, as: UTF8.self)
            c.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"
                + "Content-Length: \(echo.utf8.count)\r\n\r\n" + echo)
        }) { port in
            let r = try RawHTTPClient.request(
                port: port, method: "POST", path: "/stream/demo", headers: [("X-Test", "1")],
                body: Array("abc".utf8), timeout: .seconds(2))
            #expect(r.status == 405 && r.header("allow") == "GET")
            #expect(r.bodyText.hasPrefix("POST /stream/demo HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"))
            #expect(r.bodyText.contains("\r\nConnection: close\r\nContent-Length: 3\r\nX-Test: 1\r\n\r\nabc"))
        }
    }

    @Test func rawSendReturnsEverythingUntilClose() throws {
        try withServer({ c in
            c.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno")
        }) { port in
            let bytes = try RawHTTPClient.send(port: port, raw: "BROKEN\r\n\r\n", timeout: .seconds(2))
            #expect(String(decoding: bytes, as: UTF8.self).hasSuffix("\r\n\r\nno"))
        }
    }

    @Test func timeoutsThrowWithWhatArrived() throws {
        try withServer({ c in
            if c.path == "/partial" {
                c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                c.writeChunk("data: x\n")
            }
            c.waitForClientClose()
        }) { port in
            #expect(throws: RawHTTPError.self) { try RawHTTPClient.get(port: port, path: "/", timeout: .milliseconds(150)) }
            do {
                _ = try RawHTTPClient.get(port: port, path: "/partial", timeout: .milliseconds(150))
                Issue.record("expected a timeout")
            } catch let RawHTTPError.timedOut(received) {
                #expect(received == Array("data: x\n".utf8))
            }
            do {
                _ = try RawHTTPClient.send(port: port, raw: "GET / HTTP/1.1\r\n\r\n", timeout: .milliseconds(100))
                Issue.record("expected a timeout")
            } catch let RawHTTPError.timedOut(received) {
                #expect(received.isEmpty)
            }
        }
    }

    @Test func truncatedChunkedBodyIsAnError() throws {
        try withServer({ c in
            c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
        }) { port in
            #expect(throws: RawHTTPError.self) { try RawHTTPClient.get(port: port, path: "/", timeout: .seconds(2)) }
        }
    }

    @Test func closeMidStreamIsSeenByTheServer() throws {
        let serverSawClose = DispatchSemaphore(value: 0)
        try withServer({ c in
            c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in 0..<200 {
                guard c.writeChunk(": ping\n\n") else { serverSawClose.signal(); return }
                c.pause(milliseconds: 5)
            }
        }) { port in
            let reader = try HTTPStreamReader.open(port: port, path: "/", receiveBufferSize: 4096, timeout: .seconds(2))
            #expect(reader.fd >= 0)
            #expect(try reader.readSome(timeout: .seconds(2))?.isEmpty == false)
            reader.close(reset: true)
            #expect(reader.fd == -1)
            #expect(serverSawClose.wait(timeout: .now() + 2) == .success)
        }
    }

    @Test func connectionRefusedIsAnError() throws {
        let server = try ScriptedHTTPServer { _ in }
        let port = server.port
        server.stop()
        #expect(throws: RawHTTPError.self) { try RawHTTPClient.get(port: port, path: "/", timeout: .seconds(1)) }
    }
}
