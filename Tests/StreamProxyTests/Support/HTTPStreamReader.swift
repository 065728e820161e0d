import Glibc

/// A response being read as it arrives: the head is parsed by `open`, then the caller pulls
/// de-framed body bytes with `readSome`.
///
/// Exists for SSE: a stream's events must be observed when they arrive (to check flushing,
/// heartbeats, interleaving), and a test must be able to stop reading (slow client) or vanish
/// (`close`) mid-stream. Not thread-safe: use it from one thread.
final class HTTPStreamReader: HTTPHeaderLookup {
    /// Status line and headers.
    let head: HTTPHead
    var status: Int { head.status }
    var reason: String { head.reason }
    var headers: [(String, String)] { head.headers }
    var isChunked: Bool { head.isChunked }
    /// The socket's file descriptor (-1 after `close`). Not reading from it is how a test plays a
    /// slow client; it can also be inspected with getsockopt & co.
    var fd: Int32 { socket.fd }
    /// True once the end of the body was read (`readSome` returned nil).
    private(set) var isFinished = false
    /// True if the server reset the connection (RST) rather than closing it.
    private(set) var sawReset = false

    private let socket: RawSocket
    private var decoder: HTTPBodyDecoder
    private var buffer: [UInt8]

    /// Connects, sends the request and reads the response head. `timeout` covers all three.
    /// `receiveBufferSize` sets SO_RCVBUF before connecting: small values make a non-reading
    /// client back-pressure the server after a few KiB instead of several MiB.
    /// The request gets `Host` and `Connection: close` unless `headers` has its own, and
    /// `Content-Length` when there is a body. `path` is sent verbatim.
    static func open(
        port: UInt16,
        path: String,
        method: String = "GET",
        headers: [(String, String)] = [],
        body: [UInt8] = [],
        version: String = "1.1",
        receiveBufferSize: Int32? = nil,
        timeout: Duration = RawHTTPClient.defaultTimeout
    ) throws -> HTTPStreamReader {
        let deadline = ContinuousClock.now + timeout
        let socket = try RawSocket(port: port, receiveBufferSize: receiveBufferSize, deadline: deadline)
        let request = RawHTTPClient.requestBytes(
            port: port, method: method, path: path, headers: headers, body: body, version: version)
        try socket.sendAll(request, deadline: deadline)
        var (head, rest) = try readHead(socket, deadline: deadline)
        // Interim 1xx responses (other than 101) precede the real one.
        while (100..<200).contains(head.status) && head.status != 101 {
            (head, rest) = try readHead(socket, deadline: deadline, buffered: rest)
        }
        return try HTTPStreamReader(socket: socket, head: head, rest: rest, method: method)
    }

    private init(socket: RawSocket, head: HTTPHead, rest: [UInt8], method: String) throws {
        self.socket = socket
        self.head = head
        self.buffer = rest
        self.decoder = try HTTPBodyDecoder(head: head, requestMethod: method)
    }

    /// The next body bytes (never empty), waiting up to `timeout` for them; nil at the end of the
    /// body. Throws `RawHTTPError.timedOut` if nothing arrives in time and `truncatedBody` if the
    /// connection ends before the framing says the body is complete.
    func readSome(timeout: Duration = RawHTTPClient.defaultTimeout) throws -> [UInt8]? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let out = try decoder.decode(&buffer)
            if !out.isEmpty { return out }
            if decoder.isComplete || isFinished {
                isFinished = true
                return nil
            }
            guard socket.fd >= 0 else { throw RawHTTPError.socketError(call: "recv after close()", errno: EBADF) }
            let received = try socket.receive(deadline: deadline)
            switch received {
            case let .bytes(bytes):
                buffer += bytes
            case .closed, .reset:
                if case .reset = received { sawReset = true }
                try decoder.finish()
                isFinished = true
                return nil
            case .timedOut:
                throw RawHTTPError.timedOut(received: [])
            }
        }
    }

    /// Reads the rest of the body; `timeout` bounds the whole read. On timeout the error carries
    /// the body bytes read so far.
    func readAll(timeout: Duration = RawHTTPClient.defaultTimeout) throws -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        var body: [UInt8] = []
        do {
            while let bytes = try readSome(timeout: deadline - .now) { body += bytes }
        } catch RawHTTPError.timedOut {
            throw RawHTTPError.timedOut(received: body)
        }
        return body
    }

    /// Closes the connection at once, whatever is still unread: a client going away. With
    /// `reset: true` the kernel sends RST instead of FIN.
    func close(reset: Bool = false) {
        socket.close(reset: reset)
    }

    /// Reads until the blank line that ends a head; returns it parsed plus any bytes after it.
    private static func readHead(
        _ socket: RawSocket, deadline: ContinuousClock.Instant, buffered: [UInt8] = []
    ) throws -> (HTTPHead, [UInt8]) {
        var received = buffered
        while true {
            if let (end, next) = headEnd(in: received) {
                return (try HTTPHead(parsing: received[..<end]), Array(received[next...]))
            }
            if received.count > 1 << 20 { throw RawHTTPError.malformedHead("no end of head in 1 MiB") }
            switch try socket.receive(deadline: deadline) {
            case let .bytes(bytes): received += bytes
            case .closed, .reset: throw RawHTTPError.closedBeforeHead(received: received)
            case .timedOut: throw RawHTTPError.timedOut(received: received)
            }
        }
    }

    /// Where the head ends ("\r\n\r\n", or a lenient "\n\n"): (end of head, start of body).
    private static func headEnd(in bytes: [UInt8]) -> (Int, Int)? {
        var i = 0
        while let lf = bytes[i...].firstIndex(of: UInt8(ascii: "\n")) {
            if lf + 1 < bytes.count, bytes[lf + 1] == UInt8(ascii: "\n") { return (lf, lf + 2) }
            if lf + 2 < bytes.count, bytes[lf + 1] == UInt8(ascii: "\r"), bytes[lf + 2] == UInt8(ascii: "\n") {
                return (lf, lf + 3)
            }
            i = lf + 1
        }
        return nil
    }
}
