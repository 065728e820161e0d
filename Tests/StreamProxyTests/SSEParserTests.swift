import Foundation
import Testing
import StreamTestSupport

/// The SSE parser on fixed inputs: the integration tests trust it to report exactly what the
/// server wrote, so it is checked against the WHATWG rules here first.
@Suite struct SSEParserTests {
    private func parse(_ chunks: [[UInt8]]) -> SSEParser {
        var parser = SSEParser()
        for chunk in chunks { parser.feed(chunk) }
        return parser
    }

    private func parse(_ text: String) -> SSEParser { parse([Array(text.utf8)]) }

    private func event(_ name: String, _ id: String?, _ data: String) -> SSEEvent {
        SSEEvent(event: name, id: id, data: data, receivedAt: .now)
    }

    @Test func fieldsAndDefaults() {
        let p = parse("event: open\nid: 1\ndata: {\"a\":1}\n\ndata: plain\n\n")
        #expect(p.events == [event("open", "1", #"{"a":1}"#), event("message", nil, "plain")])
        #expect(p.lastEventID == "1")  // persists across events, per the spec
        #expect(!p.hasPartialEvent)
    }

    @Test func lineEndingsCRLFAndCRMatchLF() {
        let lf = parse("event: a\nid: 7\ndata: x\ndata: y\n\n: ping\n\n").events
        let crlf = parse("event: a\r\nid: 7\r\ndata: x\r\ndata: y\r\n\r\n: ping\r\n\r\n")
        let cr = parse("event: a\rid: 7\rdata: x\rdata: y\r\r: ping\r\r")
        #expect(lf == [event("a", "7", "x\ny")])
        #expect(crlf.events == lf && crlf.comments == ["ping"])
        #expect(cr.events == lf && cr.comments == ["ping"])
    }

    @Test func crlfSplitBetweenFeedsIsOneLineEnd() {
        // "\r" at the end of one read and "\n" at the start of the next must not make a blank line.
        let p = parse([Array("data: a\r".utf8), Array("\ndata: b\r".utf8), Array("\n\r".utf8), Array("\n".utf8)])
        #expect(p.events == [event("message", nil, "a\nb")])
    }

    @Test func splitAtEveryByteOffsetGivesTheSameResult() {
        let text = "retry: 2500\n\nevent: chunk\r\nid: 3\r\ndata: {\"text\":\"héllo — 😀\"}\r\n\r\n: ping\r"
            + "\revent: done\rid: done\rdata: {}\r\r"
        let bytes = Array(text.utf8)
        let whole = parse([bytes])
        #expect(whole.events.count == 2)
        #expect(whole.events.first?.data == #"{"text":"héllo — 😀"}"#)
        for cut in 0...bytes.count {
            let split = parse([Array(bytes[..<cut]), Array(bytes[cut...])])
            #expect(split.events == whole.events, "cut at \(cut)")
            #expect(split.comments == ["ping"] && split.retry == 2500, "cut at \(cut)")
        }
        let byteByByte = parse(bytes.map { [$0] })
        #expect(byteByByte.events == whole.events && byteByByte.comments == whole.comments)
    }

    @Test func multiByteCharacterSplitAcrossFeeds() {
        let bytes = Array("data: 😀€\n\n".utf8)
        let emoji = bytes.firstIndex(of: 0xF0)!
        let p = parse([Array(bytes[..<(emoji + 2)]), Array(bytes[(emoji + 2)..<(emoji + 5)]), Array(bytes[(emoji + 5)...])])
        #expect(p.events.map(\.data) == ["😀€"])
        #expect(parse([[0x64, 0x61, 0x74, 0x61, 0x3A, 0xFF, 0x0A, 0x0A]]).events.map(\.data) == ["\u{FFFD}"])
    }

    @Test func commentsAreRecordedWithoutColonAndOneSpace() {
        let p = parse(": ping\n:\n:  two spaces\n:nospace\ndata: x\n\n")
        #expect(p.comments == ["ping", "", " two spaces", "nospace"])
        #expect(p.events.count == 1)
    }

    @Test func dataLinesAndSpaces() {
        let p = parse("data:no space\ndata:  two\ndata\ndata: \n\n")
        #expect(p.events.map(\.data) == ["no space\n two\n\n"])
        // A block with no data dispatches nothing; unknown fields are ignored.
        #expect(parse("event: x\nid: 4\nfoo: bar\n\n").events.isEmpty)
    }

    @Test func idAndRetryRules() {
        let p = parse("retry: 3000\nretry: 12x\nretry:\nid: a\0b\ndata: 1\n\nid\ndata: 2\n\n")
        #expect(p.retry == 3000)
        #expect(p.events.map(\.id) == [nil, ""])  // id with NUL ignored; bare "id" sets ""
        #expect(p.lastEventID == "")
    }

    @Test func byteOrderMarkAndPartialEnd() {
        let p = parse([[0xEF, 0xBB], [0xBF] + Array("data: x\n\ndata: cut".utf8)])
        #expect(p.events.map(\.data) == ["x"])
        #expect(p.hasPartialEvent)
        #expect(parse("data: y\n").hasPartialEvent)
    }

    @Test func receivedAtIsTheFeedTime() {
        var parser = SSEParser()
        let t0 = ContinuousClock.now
        parser.feed("data: a\n", at: t0)
        parser.feed("\n", at: t0 + .seconds(1))
        #expect(parser.events.first?.receivedAt == t0 + .seconds(1))
    }

    @Test func jsonHelpers() throws {
        let o = try jsonObject(#"{"i":3,"ms":1.5,"whole":2.0,"ok":true,"zero":0,"s":"x","a":[{"i":0}],"n":null}"#)
        #expect(o.int("i") == 3 && o.int("whole") == 2 && o.int("ms") == nil && o.int("ok") == nil)
        #expect(o.double("ms") == 1.5 && o.bool("ok") == true && o.bool("zero") == nil && o.int("zero") == 0)
        #expect(o.string("s") == "x" && o.objects("a")?.first?.int("i") == 0 && o.isNull("n"))
        #expect(throws: JSONTestError.self) { try jsonObject("[1]") }
        #expect(throws: JSONTestError.self) { try jsonObject("{nope") }
    }
}

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
