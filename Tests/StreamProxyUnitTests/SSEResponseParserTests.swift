import Testing
@testable import StreamProxy

/// The harness's wire parser on recorded responses, fed in every possible split.
@Suite struct SSEResponseParserTests {
    private static let chunkedResponse: [UInt8] = {
        let body = [
            "retry: 2000\n\n",
            "event: open\nid: 1\ndata: {\"route\":\"w\"}\n\n",
            "event: chunk\nid: 2\ndata: {\"i\":0,\"text\":\"abc\"}\n\n",
            "event: error\nid: 3\ndata: {\"i\":1,\"kind\":\"timeout\",\"detail\":\"x\"}\n\n",
            ": heartbeat\n\n",
            "event: done\r\nid: 4\r\ndata: {\"ok\":1}\r\n\r\n",
        ]
        var out = Array("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        for (k, piece) in body.enumerated() {
            let bytes = Array(piece.utf8)
            out += Array(String(bytes.count, radix: 16).utf8) + (k == 1 ? Array(";ext=1".utf8) : []) + [13, 10] + bytes + [13, 10]
        }
        return out + Array("0\r\n\r\n".utf8)
    }()

    private func parse(_ bytes: [UInt8], splitAt cuts: [Int]) -> (SSEResponseParser, SSEResponseParser.Findings) {
        var parser = SSEResponseParser()
        var all = SSEResponseParser.Findings()
        var start = 0
        for end in cuts + [bytes.count] where end >= start {
            let found = bytes[start..<end].withUnsafeBytes { parser.feed($0) }
            if let s = found.status { all.status = s }
            all.events += found.events
            all.sawChunk = all.sawChunk || found.sawChunk
            all.sawDone = all.sawDone || found.sawDone
            all.errorKinds += found.errorKinds
            all.ended = all.ended || found.ended
            start = end
        }
        return (parser, all)
    }

    @Test func findingsDoNotDependOnHowReadsSplitTheResponse() {
        let bytes = Self.chunkedResponse
        for cut in 0...bytes.count {
            let (parser, f) = parse(bytes, splitAt: [cut])
            #expect(f.status == 200 && f.events == 4 && f.sawChunk && f.sawDone && f.ended, "cut at \(cut)")
            #expect(f.errorKinds == ["timeout"], "cut at \(cut)")
            #expect(parser.connectionReusable, "cut at \(cut)")
        }
        // One byte at a time.
        let (_, f) = parse(bytes, splitAt: Array(1..<bytes.count))
        #expect(f.events == 4 && f.errorKinds == ["timeout"] && f.ended)
    }

    @Test func connectionCloseOrHTTP10MakesTheConnectionSingleUse() {
        var close = Self.chunkedResponse
        close.insert(contentsOf: Array("Connection: close\r\n".utf8), at: Array("HTTP/1.1 200 OK\r\n".utf8).count)
        #expect(!parse(close, splitAt: []).0.connectionReusable)

        let http10 = Array("HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: done\ndata: {}\n\n".utf8)
        var (parser, f) = parse(http10, splitAt: [20])
        #expect(f.events == 1 && f.sawDone && !f.ended)
        let endedAtClose = parser.closed()
        #expect(endedAtClose)
        #expect(!parser.connectionReusable)
    }

    @Test func theResponseEndsAfterTheLastChunksEmptyLineWhereverReadsSplit() {
        // A kept-alive connection carries the next response right after this one: the parser must
        // take exactly the first response, including the CRLF that follows the last chunk.
        let bytes = Self.chunkedResponse
        for cut in (bytes.count - 6)...bytes.count {
            var parser = SSEResponseParser()
            var ended = false
            for piece in [bytes[..<cut], bytes[cut...]] where !piece.isEmpty {
                #expect(!parser.isDone, "cut at \(cut): bytes fed after the end")
                ended = piece.withUnsafeBytes { parser.feed($0) }.ended || ended
            }
            #expect(ended && parser.isDone && parser.connectionReusable, "cut at \(cut)")
        }
        // Not done before the final CRLF has arrived.
        var early = SSEResponseParser()
        _ = bytes[..<(bytes.count - 2)].withUnsafeBytes { early.feed($0) }
        #expect(!early.isDone)
    }

    @Test func contentLengthBodiesEndAtTheirLengthAndKeepTheConnection() {
        let body = "event: done\ndata: {}\n\n"
        let response = Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        for cut in 0...response.count {
            let (parser, f) = parse(response, splitAt: [cut])
            #expect(f.events == 1 && f.sawDone && f.ended && parser.connectionReusable, "cut at \(cut)")
        }
    }

    @Test func lineEndsBeforeTheStatusLineAreSkipped() {
        let (_, f) = parse(Array("\r\nHTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n".utf8), splitAt: [1])
        #expect(f.status == 204 && f.ended)
    }

    @Test func statusIsReportedFromTheStatusLine() {
        let (_, f) = parse(Array("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".utf8), splitAt: [9])
        #expect(f.status == 503)
    }

    /// A status line without a reason phrase (RFC 9112 allows an empty one), or with its fields
    /// apart by more than one space, still gives the status; one without a code gives 0.
    @Test(arguments: [("HTTP/1.1 503\r\n", 503), ("HTTP/1.1 503 \r\n", 503), ("HTTP/1.1  404  Not Found\r\n", 404),
                      ("HTTP/1.1\r\n", 0), ("HTTP/1.1 OK\r\n", 0)])
    func statusLinesOfEveryShape(line: String, status: Int) {
        let (_, f) = parse(Array((line + "Content-Length: 0\r\n\r\n").utf8), splitAt: [3])
        #expect(f.status == status, "\(line.debugDescription)")
        #expect(f.ended)
    }
}
