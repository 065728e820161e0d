import EventLoop

/// Query options every body endpoint of the test origin understands.
struct OriginOptions {
    /// Seconds before the response headers.
    var delay: Double = 0
    /// Body bytes per second (0: as fast as the client reads).
    var rate = 0
    /// Bytes per write.
    var chunk = 64 * 1024
    /// Stop sending after this many body bytes and hold the connection open.
    var stallAfter: Int?
    /// Reset the connection after this many body bytes.
    var resetAfter: Int?
    var status = 200
    /// Omit Content-Length (chunked encoding for HTTP/1.1).
    var chunked = false

    init() {}

    /// No trickle, stall, reset, chunked framing or custom write size: the body may be sent at once.
    var isPlain: Bool {
        rate == 0 && stallAfter == nil && resetAfter == nil && !chunked && chunk == 64 * 1024
    }

    init(_ request: HTTPRequest) {
        // Parsed once: most requests (every benchmark request) have no query at all.
        let query = request.query
        guard !query.isEmpty else { return }
        func value(_ name: String) -> String? { query.first { $0.name == name }?.value }
        func int(_ name: String) -> Int? { value(name).flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil } }
        delay = Double(int("delay") ?? 0) / 1000
        rate = int("rate") ?? 0
        chunk = max(1, int("chunk") ?? 64 * 1024)
        stallAfter = int("stallAfter")
        resetAfter = int("resetAfter")
        if let s = int("status"), (100...599).contains(s) { status = s }
        chunked = value("chunked") == "1"
    }
}
