/// A blocking HTTP/1.1 client for the integration tests, talking to 127.0.0.1 only.
///
/// Independent of the server's own HTTP stack (libevent) and of libcurl on purpose, so a bug in
/// either cannot hide itself. Every call has a timeout (default 10 s) and throws
/// `RawHTTPError.timedOut` when it expires: a broken server fails a test, it never hangs the run.
enum RawHTTPClient {
    static let defaultTimeout: Duration = .seconds(10)

    /// `GET path` and the whole response (chunked / Content-Length / close-delimited decoded).
    /// `version` is "1.1" or "1.0". Sends `Host` and `Connection: close` unless `headers` has them.
    static func get(
        port: UInt16,
        path: String,
        headers: [(String, String)] = [],
        version: String = "1.1",
        timeout: Duration = defaultTimeout
    ) throws -> HTTPResult {
        try request(port: port, method: "GET", path: path, headers: headers, version: version, timeout: timeout)
    }

    /// Any method (e.g. POST for 405 tests). A non-empty body gets a `Content-Length` header
    /// unless `headers` already frames it. `timeout` bounds the whole exchange.
    static func request(
        port: UInt16,
        method: String,
        path: String,
        headers: [(String, String)] = [],
        body: [UInt8] = [],
        version: String = "1.1",
        timeout: Duration = defaultTimeout
    ) throws -> HTTPResult {
        let deadline = ContinuousClock.now + timeout
        let reader = try HTTPStreamReader.open(
            port: port, path: path, method: method, headers: headers, body: body,
            version: version, timeout: timeout)
        let body = try reader.readAll(timeout: deadline - .now)
        return HTTPResult(head: reader.head, body: body)
    }

    /// Writes `raw` as is (malformed-request tests) and returns every byte read until the server
    /// closes (FIN or RST). If the server closes before taking all of `raw`, reading still
    /// happens: its error response is what the test wants. On timeout throws
    /// `RawHTTPError.timedOut(received:)` carrying the bytes read so far, since a server that
    /// does not close a connection it rejected is itself a finding.
    static func send(port: UInt16, raw: [UInt8], timeout: Duration = defaultTimeout) throws -> [UInt8] {
        let deadline = ContinuousClock.now + timeout
        let socket = try RawSocket(port: port, deadline: deadline)
        try socket.sendAll(raw, deadline: deadline)
        var received: [UInt8] = []
        while true {
            switch try socket.receive(deadline: deadline) {
            case let .bytes(bytes): received += bytes
            case .closed, .reset: return received
            case .timedOut: throw RawHTTPError.timedOut(received: received)
            }
        }
    }

    /// `send(port:raw:)` for text: the string's UTF-8 bytes, exactly (write "\r\n" yourself).
    static func send(port: UInt16, raw: String, timeout: Duration = defaultTimeout) throws -> [UInt8] {
        try send(port: port, raw: Array(raw.utf8), timeout: timeout)
    }

    /// The bytes of a request: request line, default headers the caller did not override,
    /// the caller's headers, blank line, body.
    static func requestBytes(
        port: UInt16, method: String, path: String, headers: [(String, String)],
        body: [UInt8], version: String
    ) -> [UInt8] {
        func has(_ name: String) -> Bool { headers.contains { $0.0.lowercased() == name.lowercased() } }
        var lines = ["\(method) \(path) HTTP/\(version)"]
        if !has("Host") { lines.append("Host: 127.0.0.1:\(port)") }
        if !has("Connection") { lines.append("Connection: close") }
        if !body.isEmpty && !has("Content-Length") && !has("Transfer-Encoding") {
            lines.append("Content-Length: \(body.count)")
        }
        lines += headers.map { "\($0.0): \($0.1)" }
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body
    }
}
