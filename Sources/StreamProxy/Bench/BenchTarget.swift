import Glibc

/// Where the load generator sends its streams: an `http://host:port/path` URL.
struct BenchTarget: Sendable {
    /// As written in the URL; sent in the Host header.
    let host: String
    let port: UInt16
    let path: String
    /// The IPv4 address to connect to: the host itself when it is a literal, else set by
    /// ``resolved()`` (nil until then).
    let address: String?

    /// Parses `http://host:port/path`; a host name is resolved later, by ``resolved()``.
    init?(_ url: String) {
        guard url.hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        let parts = authority.split(separator: ":", maxSplits: 1)
        guard let h = parts.first, !h.isEmpty else { return nil }
        host = String(h)
        if parts.count == 2 {
            guard let p = UInt16(parts[1]) else { return nil }
            port = p
        } else {
            port = 80
        }
        var probe = in_addr()
        address = inet_pton(AF_INET, host, &probe) == 1 ? host : nil
    }

    private init(host: String, port: UInt16, path: String, address: String) {
        self.host = host
        self.port = port
        self.path = path
        self.address = address
    }

    /// The target with its host name resolved to an IPv4 address (getaddrinfo, which blocks:
    /// called once, before the run's loop starts, so no stream waits on a lookup).
    func resolved() throws(ConfigError) -> BenchTarget {
        if address != nil { return self }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        defer { if let list { freeaddrinfo(list) } }
        guard rc == 0, let first = list, let sa = first.pointee.ai_addr else {
            throw ConfigError(field: "url", problem: "cannot resolve '\(host)': \(String(cString: gai_strerror(rc)))")
        }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var sin = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        guard inet_ntop(AF_INET, &sin, &text, socklen_t(INET_ADDRSTRLEN)) != nil else {
            throw ConfigError(field: "url", problem: "cannot resolve '\(host)'")
        }
        let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return BenchTarget(host: host, port: port, path: path, address: address)
    }

    /// The request every stream sends: it leaves the connection open for the next stream (as
    /// `wrk` and browsers do) or, for `--new-connections`, asks for it to be closed.
    func request(keepAlive: Bool) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nAccept: text/event-stream\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n".utf8)
    }
}
