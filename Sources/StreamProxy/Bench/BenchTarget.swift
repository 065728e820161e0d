/// Where the load generator sends its streams: an `http://IP:port/path` URL.
struct BenchTarget: Sendable {
    let host: String
    let port: UInt16
    let path: String

    /// Parses `http://host:port/path` (host an IP literal or localhost: the harness targets
    /// loopback and never resolves names).
    init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        let parts = authority.split(separator: ":", maxSplits: 1)
        guard let h = parts.first, !h.isEmpty else { return nil }
        host = h == "localhost" ? "127.0.0.1" : String(h)
        if parts.count == 2 {
            guard let p = UInt16(parts[1]) else { return nil }
            port = p
        } else {
            port = 80
        }
    }

    /// The request every stream sends: it leaves the connection open for the next stream (as
    /// `wrk` and browsers do) or, for `--new-connections`, asks for it to be closed.
    func request(keepAlive: Bool) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n".utf8)
    }
}
