/// A request size limit (see ``HTTPServerOptions``) and the status that answers it.
public enum HTTPRequestLimit: Sendable, Equatable {
    /// The request line is longer than `maxRequestLine`: 414.
    case requestLine
    /// The request line and headers are larger than `maxHeadersSize`: 431.
    case headers
    /// The declared (or, chunked, the received) body is larger than `maxBodySize`: 413.
    case body

    public var status: Int {
        switch self {
        case .requestLine: 414
        case .headers: 431
        case .body: 413
        }
    }
}

/// Watches the bytes a client sends, request after request, and says when one breaks a size
/// limit, before evhttp has parsed it.
///
/// evhttp enforces only one limit itself (its maximum header size) and answers a request beyond
/// it with its own HTML 400 page, and a body beyond its maximum with an HTML 413; it cannot be
/// asked to answer otherwise. So every byte of a connection passes through this scanner first
/// (``RequestHeadGuard``), which knows where each request's head and body begin and end and
/// reports the first limit broken. evhttp's own limits are set above these, so that they never
/// fire: one path answers every oversized request.
///
/// Lines end with LF (a CR before it is part of the line's size, as on the wire). Bodies are
/// framed exactly as evhttp frames them (so that the next request starts where evhttp's does):
/// none for HEAD and TRACE; chunked when the first `Transfer-Encoding` is exactly `chunked`;
/// else the first `Content-Length`. A request this scanner cannot make sense of (a malformed
/// Content-Length or chunk size) stops it: evhttp answers such a request with 400 and closes
/// the connection, so no later request on it needs watching.
package struct RequestHeadScanner {
    package struct Limits: Equatable {
        package var maxRequestLine: Int
        package var maxHeadersSize: Int
        package var maxBodySize: Int

        package init(maxRequestLine: Int, maxHeadersSize: Int, maxBodySize: Int) {
            self.maxRequestLine = maxRequestLine
            self.maxHeadersSize = maxHeadersSize
            self.maxBodySize = maxBodySize
        }
    }

    package enum State: Equatable {
        case requestLine
        case headerLine
        case body(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        /// The CRLF after a chunk's data.
        case chunkEnd
        case trailer
        /// Stopped: the connection is evhttp's to reject.
        case stopped
    }

    package let limits: Limits
    package private(set) var state = State.requestLine
    /// Bytes of the current line so far, its LF excluded.
    private var lineLength = 0
    /// Bytes of the current request's line and headers so far.
    private var headSize = 0
    /// Body bytes of the current chunked request so far.
    private var chunkedSize = 0
    /// The current request's first `Content-Length` value and `Transfer-Encoding` (whether it is
    /// exactly `chunked`), as evhttp reads them; and whether its method has no body.
    private var contentLength: ArraySlice<UInt8>?
    private var chunked: Bool?
    private var bodyless = false
    /// Bytes scanned so far, and where the current request started (its first byte, leading
    /// empty lines included): what precedes it belongs to complete requests.
    package private(set) var scanned = 0
    package private(set) var requestStart = 0
    /// Requests (head and body) that ended before the current one.
    package private(set) var requestsBefore = 0
    /// The start of the current line: enough for a header's name and a length's digits.
    private var line: [UInt8] = []
    private static let kept = 64

    package init(limits: Limits) {
        self.limits = limits
        line.reserveCapacity(Self.kept)
    }

    /// Scans the next bytes of the connection; returns the limit the current request broke, if
    /// it broke one (the scanner then stops).
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> HTTPRequestLimit? {
        let base = scanned
        var i = 0
        defer { scanned = base + (state == .stopped ? i : bytes.count) }
        while i < bytes.count {
            scanned = base + i
            switch state {
            case .stopped:
                return nil
            case .body(let remaining):
                let n = min(remaining, bytes.count - i)
                i += n
                if remaining == n {
                    scanned = base + i
                    startNextRequest()
                } else {
                    state = .body(remaining: remaining - n)
                }
                continue
            case .chunkData(let remaining):
                let n = min(remaining, bytes.count - i)
                i += n
                state = remaining == n ? .chunkEnd : .chunkData(remaining: remaining - n)
                continue
            case .requestLine, .headerLine, .chunkSize, .chunkEnd, .trailer:
                break
            }
            let byte = bytes[i]
            i += 1
            scanned = base + i
            if byte == UInt8(ascii: "\n") {
                if let limit = endOfLine() { return stop(limit) }
                continue
            }
            lineLength += 1
            if line.count < Self.kept { line.append(byte) }
            if state == .requestLine || state == .headerLine {
                headSize += 1
                // The CR of a CRLF is not part of the line.
                if state == .requestLine, lineLength > limits.maxRequestLine, byte != UInt8(ascii: "\r") {
                    return stop(.requestLine)
                }
                if headSize > limits.maxHeadersSize { return stop(.headers) }
            } else if lineLength > limits.maxRequestLine {
                // A chunk-size or trailer line this long is no honest request.
                return stop(.headers)
            }
        }
        return nil
    }

    private mutating func stop(_ limit: HTTPRequestLimit) -> HTTPRequestLimit {
        state = .stopped
        return limit
    }

    /// A line ended (its LF seen, and counted in the head).
    private mutating func endOfLine() -> HTTPRequestLimit? {
        defer {
            lineLength = 0
            line.removeAll(keepingCapacity: true)
        }
        var content = line[...]
        if content.last == UInt8(ascii: "\r") { content = content.dropLast() }
        let empty = lineLength == 0 || (lineLength == 1 && line.first == UInt8(ascii: "\r"))
        switch state {
        case .requestLine:
            headSize += 1
            // Empty lines before a request line are skipped (RFC 9112 §2.2), as evhttp does.
            if empty {
                headSize = 0
            } else {
                state = .headerLine
                let method = content.prefix { $0 != 32 }
                bodyless = method.elementsEqual("HEAD".utf8) || method.elementsEqual("TRACE".utf8)
            }
            return headSize > limits.maxHeadersSize ? .headers : nil
        case .headerLine:
            headSize += 1
            if headSize > limits.maxHeadersSize { return .headers }
            if empty { return endOfHead() }
            return header(content, complete: lineLength <= Self.kept)
        case .chunkSize:
            guard let size = Self.chunkSize(content, complete: lineLength <= Self.kept) else { state = .stopped; return nil }
            guard size <= limits.maxBodySize - chunkedSize else { return .body }
            chunkedSize += size
            state = size == 0 ? .trailer : .chunkData(remaining: size)
        case .chunkEnd:
            state = empty ? .chunkSize : .stopped
        case .trailer:
            if empty { startNextRequest() }
        case .body, .chunkData, .stopped:
            preconditionFailure("no lines in \(state)")
        }
        return nil
    }

    private mutating func endOfHead() -> HTTPRequestLimit? {
        if bodyless {
            startNextRequest()
        } else if chunked == true {
            state = .chunkSize
        } else if let value = contentLength {
            guard !value.isEmpty, value.count <= 18, value.allSatisfy({ (48...57).contains($0) }) else {
                state = .stopped
                return nil
            }
            let length = value.reduce(0) { $0 * 10 + Int($1 - 48) }
            if length > limits.maxBodySize { return .body }
            if length > 0 { state = .body(remaining: length) } else { startNextRequest() }
        } else {
            startNextRequest()
        }
        return nil
    }

    /// The current request ended at `scanned`: the next one starts there.
    private mutating func startNextRequest() {
        state = .requestLine
        headSize = 0
        chunkedSize = 0
        contentLength = nil
        chunked = nil
        bodyless = false
        requestsBefore += 1
        requestStart = scanned
    }

    /// Notes the framing headers as evhttp reads them (the first of each; its value with leading
    /// spaces and trailing whitespace trimmed); everything else only counts towards the size.
    private mutating func header(_ content: ArraySlice<UInt8>, complete: Bool) -> HTTPRequestLimit? {
        guard let colon = content.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = content[..<colon]
        var value = content[content.index(after: colon)...]
        while value.first == 32 { value = value.dropFirst() }
        while let last = value.last, last == 32 || last == 9 { value = value.dropLast() }
        if contentLength == nil, Self.equalsIgnoringCase(name, "content-length") {
            // A value longer than what is kept cannot be a valid length.
            contentLength = complete ? value : ArraySlice([UInt8(ascii: "x")])
        } else if chunked == nil, Self.equalsIgnoringCase(name, "transfer-encoding") {
            chunked = complete && Self.equalsIgnoringCase(value, "chunked")
        }
        return nil
    }

    /// The size of a chunk-size line (hex digits, then optional `;extensions`).
    private static func chunkSize(_ content: ArraySlice<UInt8>, complete: Bool) -> Int? {
        var size = 0
        var digits = 0
        for byte in content {
            let digit: Int
            switch byte {
            case 48...57: digit = Int(byte - 48)
            case 65...70: digit = Int(byte - 55)
            case 97...102: digit = Int(byte - 87)
            case UInt8(ascii: ";"), 32, 9:
                return digits > 0 ? size : nil
            default: return nil
            }
            digits += 1
            guard digits <= 15 else { return nil }
            size = size * 16 + digit
        }
        return digits > 0 && complete ? size : nil
    }

    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ name: StaticString) -> Bool {
        guard bytes.count == name.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        return zip(bytes, expected).allSatisfy { ($0 | ($0 >= 65 && $0 <= 90 ? 0x20 : 0)) == $1 }
    }
}
