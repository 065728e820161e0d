/// Errors from the raw test client. Each case says enough to diagnose a failing test from its
/// message alone.
enum RawHTTPError: Error, CustomStringConvertible {
    case connectFailed(port: UInt16, errno: Int32)
    case socketError(call: String, errno: Int32)
    /// The deadline passed; `received` holds the bytes read so far (raw for `send`, decoded body
    /// bytes otherwise), so a test can still show what the server did send.
    case timedOut(received: [UInt8])
    /// The connection ended before a complete status line and header block arrived.
    case closedBeforeHead(received: [UInt8])
    case malformedHead(String)
    case malformedChunk(String)
    /// The connection ended in the middle of a Content-Length or chunked body.
    case truncatedBody(String)

    var description: String {
        switch self {
        case let .connectFailed(port, err): "connect to 127.0.0.1:\(port) failed (errno \(err))"
        case let .socketError(call, err): "\(call) failed (errno \(err))"
        case let .timedOut(received): "timed out after receiving \(received.count) bytes: \(preview(received))"
        case let .closedBeforeHead(received): "connection closed before a full response head: \(preview(received))"
        case let .malformedHead(why): "malformed response head: \(why)"
        case let .malformedChunk(why): "malformed chunked encoding: \(why)"
        case let .truncatedBody(why): "truncated body: \(why)"
        }
    }

    private func preview(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(300), as: UTF8.self)
        return text.debugDescription + (bytes.count > 300 ? "…" : "")
    }
}

/// Anything with a header list gets case-insensitive lookup (HTTP header names are
/// case-insensitive, and the server may spell them either way).
protocol HTTPHeaderLookup {
    var headers: [(String, String)] { get }
}

extension HTTPHeaderLookup {
    /// The first value of header `name` (case-insensitive), or nil.
    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// Every value of header `name`, in order (for repeated headers).
    func headerValues(_ name: String) -> [String] {
        headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }
}

/// A parsed status line and header block.
struct HTTPHead: HTTPHeaderLookup, Sendable {
    /// "HTTP/1.1" or "HTTP/1.0", as the server wrote it.
    var version: String
    var status: Int
    var reason: String
    /// In wire order, names as sent, values trimmed.
    var headers: [(String, String)]
    /// Whether the body uses `Transfer-Encoding: chunked`.
    var isChunked: Bool {
        header("Transfer-Encoding")?.lowercased().split(separator: ",").last?
            .httpTrimmed() == "chunked"
    }

    /// Parses the bytes of a head (without the blank line that ends it).
    init(parsing bytes: ArraySlice<UInt8>) throws {
        // Split bytes, not a String: in Swift "\r\n" is one Character and would not split on "\n".
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0, as: UTF8.self)[...]
        }
        guard !lines.isEmpty else { throw RawHTTPError.malformedHead("empty") }
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3, let status = Int(parts[1]) else {
            throw RawHTTPError.malformedHead("bad status line \(String(statusLine).debugDescription)")
        }
        version = String(parts[0])
        self.status = status
        reason = parts.count > 2 ? String(parts[2]) : ""
        headers = []
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t", let last = headers.popLast() {
                // obs-fold continuation line: part of the previous header's value.
                headers.append((last.0, last.1 + " " + line.httpTrimmed()))
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw RawHTTPError.malformedHead("header line without colon \(String(line).debugDescription)")
            }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].httpTrimmed()))
        }
    }
}

/// A complete response, body already de-chunked.
struct HTTPResult: HTTPHeaderLookup, Sendable {
    var status: Int
    var reason: String
    var headers: [(String, String)]
    /// The decoded body (chunked framing removed).
    var body: [UInt8]
    /// Whether the body arrived with `Transfer-Encoding: chunked`.
    var isChunked: Bool
    /// "HTTP/1.1" or "HTTP/1.0", as the server wrote it.
    var version: String

    /// The body as UTF-8 (invalid bytes become U+FFFD).
    var bodyText: String { String(decoding: body, as: UTF8.self) }

    init(head: HTTPHead, body: [UInt8]) {
        status = head.status
        reason = head.reason
        headers = head.headers
        isChunked = head.isChunked
        version = head.version
        self.body = body
    }
}

extension StringProtocol {
    /// Trims HTTP optional whitespace (SP, HTAB). Fileprivate so it cannot collide with
    /// Foundation's `trimmingCharacters(in:)` in other test files.
    fileprivate func httpTrimmed() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}
