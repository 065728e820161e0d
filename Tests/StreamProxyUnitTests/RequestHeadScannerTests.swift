import Testing
@testable import EventLoop

/// The size-limit scanner as a value: bytes in, the broken limit out, fed whole and one byte at
/// a time (a scanner that depended on how reads split the stream would differ).
@Suite struct RequestHeadScannerTests {
    private let limits = RequestHeadScanner.Limits(maxRequestLine: 20, maxHeadersSize: 60, maxBodySize: 10)

    /// The verdict for `text` fed in one piece and byte by byte (which must agree), and the state after.
    private func scan(_ text: String, limits: RequestHeadScanner.Limits? = nil) -> (HTTPRequestLimit?, RequestHeadScanner.State) {
        let limits = limits ?? self.limits
        let bytes = Array(text.utf8)
        var whole = RequestHeadScanner(limits: limits)
        let verdict = bytes.withUnsafeBytes { whole.scan($0) }
        var bytewise = RequestHeadScanner(limits: limits)
        var bytewiseVerdict: HTTPRequestLimit?
        for byte in bytes where bytewiseVerdict == nil {
            bytewiseVerdict = [byte].withUnsafeBytes { bytewise.scan($0) }
        }
        #expect(verdict == bytewiseVerdict, "whole and byte-by-byte agree on \(text.debugDescription)")
        #expect(whole.state == bytewise.state)
        return (verdict, whole.state)
    }

    @Test func requestsWithinTheLimitsPass() {
        #expect(scan("GET /a HTTP/1.1\r\nHost: x\r\n\r\n") == (nil, .requestLine))
        // Two pipelined, with bare LFs, after an empty line: each head counted on its own.
        #expect(scan("\r\nGET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\r\nHost: y\r\n\r\n") == (nil, .requestLine))
        #expect(scan("GET /a HTTP/1.1\r\nHost: x\r\n") == (nil, .headerLine))
    }

    @Test func theRequestLineLimitIsExactAndExcludesTheCRLF() {
        let twenty = "GET /" + String(repeating: "a", count: 6) + " HTTP/1.1"
        #expect(twenty.utf8.count == 20)
        #expect(scan(twenty + "\r\nH: x\r\n\r\n").0 == nil)
        #expect(scan("GET /" + String(repeating: "a", count: 7) + " HTTP/1.1\r\n").0 == .requestLine)
        // Caught before the line ends: a client cannot make the scanner wait for a LF.
        #expect(scan("GET /" + String(repeating: "a", count: 100)) == (.requestLine, .stopped))
    }

    @Test func theHeadLimitCountsTheLineAndEveryHeaderWithTheirLineEnds() {
        // 17 + 2, then 39 + 2 = 60 bytes with the final CRLF...
        let head = "GET /a HTTP/1.1\r\n" + "X: " + String(repeating: "v", count: 36) + "\r\n"
        #expect(head.utf8.count == 58)
        #expect(scan(head + "\r\n").0 == nil)
        #expect(scan(head + "Y\r\n\r\n").0 == .headers)
        #expect(scan("GET /a HTTP/1.1\r\nX: " + String(repeating: "v", count: 1000)).0 == .headers)
    }

    @Test func bodiesAreSkippedByTheirLengthAndTheNextRequestIsScanned() {
        #expect(scan("POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET /b HTTP/1.1\r\n\r\n") == (nil, .requestLine))
        // The next request's length is its own.
        #expect(scan("POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n") == (nil, .requestLine))
        // The body's bytes are not a request line, however long they look.
        #expect(scan("POST /a HTTP/1.1\r\ncontent-length:  5 \r\n\r\n\n\n\n\n\n") == (nil, .requestLine))
        #expect(scan("POST /a HTTP/1.1\r\nContent-Length: 11\r\n\r\n").0 == .body)
        #expect(scan("POST /a HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n") == (nil, .stopped))
        #expect(scan("POST /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n") == (nil, .stopped))
    }

    @Test func chunkedBodiesAreFollowedAndTheirTotalIsLimited() {
        let request = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(scan(request + "5;x=y\r\nabcde\r\n5\r\nfghij\r\n0\r\nT: z\r\n\r\nGET /b HTTP/1.1\r\n\r\n") == (nil, .requestLine))
        #expect(scan(request + "5\r\nabcde\r\n6\r\n").0 == .body)
        #expect(scan(request + "zz\r\n") == (nil, .stopped))
        #expect(scan(request + "5\r\nabcdeXY\r\n") == (nil, .stopped))
        // Another coding last is not chunked framing: no body is expected.
        #expect(scan("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == (nil, .requestLine))
    }

    /// Bodies are framed as evhttp frames them, so the next request starts where evhttp's does.
    @Test func framingFollowsEvhttp() {
        func scan(_ text: String) -> (HTTPRequestLimit?, RequestHeadScanner.State) {
            self.scan(text, limits: .init(maxRequestLine: 100, maxHeadersSize: 200, maxBodySize: 10))
        }
        // HEAD and TRACE have no body whatever their headers say.
        #expect(scan("HEAD /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /b HTTP/1.1\r\n\r\n") == (nil, .requestLine))
        #expect(scan("TRACE /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nGET /b HTTP/1.1\r\n\r\n") == (nil, .requestLine))
        #expect(scan("HEAD /a HTTP/1.1\r\nContent-Length: nonsense\r\n\r\n") == (nil, .requestLine))
        // Chunked only when the first Transfer-Encoding is exactly "chunked"; then its length is ignored.
        #expect(scan("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == (nil, .requestLine))
        #expect(scan("POST /a HTTP/1.1\r\nTransfer-Encoding: CHUNKED \r\nContent-Length: 99\r\n\r\n") == (nil, .chunkSize))
        #expect(scan("POST /a HTTP/1.1\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n") == (nil, .requestLine))
        // The first Content-Length counts.
        #expect(scan("POST /a HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 50\r\n\r\nxy") == (nil, .requestLine))
    }

    /// Where each request starts and how many ended before it: what the guard keeps for evhttp
    /// when it cuts the buffer at a rejected request.
    @Test func requestOffsetsAndCounts() {
        var scanner = RequestHeadScanner(limits: limits)
        let two = Array("GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz".utf8)
        #expect(two.withUnsafeBytes { scanner.scan($0) } == nil)
        #expect(scanner.requestsBefore == 2)
        #expect(scanner.requestStart == two.count)
        let long = Array("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8)
        #expect(long.withUnsafeBytes { scanner.scan($0) } == .requestLine)
        #expect(scanner.requestStart == two.count, "the rejected request starts after the two")
    }

    @Test func afterAVerdictTheScannerStops() {
        var scanner = RequestHeadScanner(limits: limits)
        let first = Array(("GET /" + String(repeating: "a", count: 50)).utf8).withUnsafeBytes { scanner.scan($0) }
        #expect(first == .requestLine)
        let second = Array("\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { scanner.scan($0) }
        #expect(second == nil)
        #expect(scanner.state == .stopped)
    }
}
