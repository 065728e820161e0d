import EventLoop
import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// A test origin and a proxy, both real servers on 127.0.0.1 with ports chosen by the kernel,
/// running on their own loop threads inside the test process.
final class TestCluster {
    let origin: LoopThread<OriginServer, UInt16>
    let proxy: ProxyServer
    let config: ProxyConfig

    var originPort: UInt16 { origin.info }
    var proxyPort: UInt16 { proxy.port }

    /// - Parameters:
    ///   - routes: route name → origin paths (e.g. "/bytes/1024"); full URLs are kept as given.
    ///   - configure: adjusts the proxy's configuration (limits, timeouts, ...).
    init(routes: [String: [String]], prefix: Int = 1024, workers: Int = 1,
         configure: (inout ProxyConfig) -> Void = { _ in }) throws {
        origin = try startOrigin()
        var config = ProxyConfig()
        config.listenHost = "127.0.0.1"
        config.listenPort = 0
        config.workers = workers
        config.prefix = prefix
        let port = origin.info
        config.routes = routes.keys.sorted().map { name in
            RouteConfig(name: name, upstreams: routes[name]!.map { $0.hasPrefix("/") ? "http://127.0.0.1:\(port)\($0)" : $0 })
        }
        configure(&config)
        self.config = try config.validated()
        proxy = try ProxyServer(config: self.config)
    }

    /// Stops both servers (idempotent; also done on deinit). Call it in a `defer`, so the
    /// servers live to the end of the test.
    func stop() {
        proxy.stop()
        origin.stopAndJoin()
    }

    deinit { stop() }

    /// The origin's counters (`GET /stats`).
    func originStats() throws -> [String: Any] {
        try RawHTTPClient.get(port: originPort, path: "/stats").json()
    }

    /// The origin's counters once every response it started has ended (its side of each
    /// connection closed or completed).
    func originStatsWhenIdle() throws -> [String: Any] {
        var stats: [String: Any] = [:]
        try waitUntil(timeout: .seconds(2)) {
            stats = try originStats()
            return stats.int("responsesInProgress") == 0
        }
        return stats
    }

    /// The proxy's `/metrics` text.
    func metrics() throws -> String {
        try RawHTTPClient.get(port: proxyPort, path: "/metrics").bodyText
    }

    /// Resets the origin's counters.
    func resetOriginStats() throws {
        _ = try RawHTTPClient.get(port: originPort, path: "/stats/reset")
    }

    /// Reads a whole stream from the proxy.
    func stream(_ path: String, headers: [(String, String)] = [], timeout: Duration = .seconds(20)) throws
        -> (head: HTTPHead, events: [SSEEvent], comments: [String])
    {
        try readSSE(port: proxyPort, path: path, headers: headers, timeout: timeout)
    }
}

/// A test origin on a loop thread of its own, on a free port (`info`).
func startOrigin() throws -> LoopThread<OriginServer, UInt16> {
    try LoopThread<OriginServer, UInt16>(name: "test-origin") { loop in
        let o = try OriginServer(loop: loop, host: "127.0.0.1", port: 0)
        return (owner: o, info: o.port)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then closed).
func refusedPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
            _ = bind(fd, p, len)
            return getsockname(fd, p, &len)
        }
    }
    return UInt16(bigEndian: addr.sin_port)
}

/// Checks the framing every stream must have (PRODUCT.md §5) and returns the events by kind.
struct StreamShape {
    let events: [SSEEvent]
    let byUpstream: [Int: [SSEEvent]]

    init(_ events: [SSEEvent], upstreams: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        self.events = events
        #expect(events.first?.event == "open", sourceLocation: sourceLocation)
        #expect(events.last?.event == "done", sourceLocation: sourceLocation)
        #expect(events.last?.id == "done", sourceLocation: sourceLocation)
        #expect(events.filter { $0.event == "done" }.count == 1, sourceLocation: sourceLocation)
        // ids: increasing integers on every event but done.
        let ids = events.dropLast().map { Int($0.id ?? "") }
        #expect(!ids.contains(nil), "every event has an integer id", sourceLocation: sourceLocation)
        let numbers = ids.compactMap { $0 }
        #expect(numbers == numbers.sorted() && Set(numbers).count == numbers.count, sourceLocation: sourceLocation)
        var by: [Int: [SSEEvent]] = [:]
        for e in events where e.event != "open" && e.event != "done" {
            let i = try #require(try e.json().int("i"), sourceLocation: sourceLocation)
            by[i, default: []].append(e)
        }
        byUpstream = by
        for i in 0..<upstreams {
            let evs = by[i] ?? []
            let terminal = evs.filter { $0.event == "end" || $0.event == "error" }
            #expect(terminal.count == 1, "upstream \(i) ends exactly once", sourceLocation: sourceLocation)
            #expect(evs.last.map { $0.event == "end" || $0.event == "error" } == true,
                    "upstream \(i)'s last event is its end or error", sourceLocation: sourceLocation)
        }
    }

    func text(of i: Int) throws -> String {
        try (byUpstream[i] ?? []).filter { $0.event == "chunk" }.map { try #require($0.json().string("text")) }.joined()
    }

    func end(of i: Int) throws -> [String: Any]? {
        try byUpstream[i]?.first { $0.event == "end" }.map { try $0.json() }
    }

    func error(of i: Int) throws -> [String: Any]? {
        try byUpstream[i]?.first { $0.event == "error" }.map { try $0.json() }
    }

    func done() throws -> [String: Any] { try #require(events.last).json() }
}
