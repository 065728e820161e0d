/// What a test origin has seen, for tests and benchmarks to check against (`GET /stats`).
struct OriginStats {
    var requests = 0
    /// Requests per target as sent (path and query), `/stats` excluded: how often each URL was
    /// fetched, for tests of coalescing.
    var requestsByTarget: [String: Int] = [:]
    /// Response body bytes handed to the socket layer (at most one write of 64 KiB more than
    /// the kernel accepted when a client leaves).
    var bodyBytesSent = 0
    /// Bodies whose client left before the body was complete.
    var bodiesAbandoned = 0
    var resets = 0
    /// The most connections open when a (non-stats) request arrived.
    var peakConnections = 0
    /// The server's accepted-connection count at the last `/stats/reset`: the server's own
    /// count only grows (the proxy's metrics mirror it), so the origin reports the difference.
    var connectionsBefore = 0
}
