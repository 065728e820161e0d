import CurlStream

/// A named fan-out: the upstreams one stream fetches and the prefix it forwards of each.
public struct Route: Sendable, Equatable {
    public let name: String
    public let upstreams: [TransferRequest]
    /// Bytes forwarded per upstream unless the request asks for another prefix.
    public let prefix: Int
    /// Concurrent streams share upstream fetches (see ``TransferSharing``), each completed one
    /// serving streams that start within `cacheFor` after it.
    public let coalesce: Bool
    public let cacheFor: Duration
    /// The `open` event's list of the upstreams, the same for every stream of the route.
    let upstreamsJSON: [UInt8]

    public init(name: String, upstreams: [TransferRequest], prefix: Int, coalesce: Bool = false, cacheFor: Duration = .zero) {
        self.name = name
        self.upstreams = upstreams
        self.prefix = prefix
        self.coalesce = coalesce
        self.cacheFor = cacheFor
        self.upstreamsJSON = FanOutSession.upstreamsJSON(upstreams.map(\.url))
    }
}

/// The routes of a running proxy, validated and frozen: built once, when the first worker has
/// bound the port, and shared by every worker; never mutated.
public struct RouteTable: Sendable, Equatable {
    /// Routes in configuration order.
    public let routes: [Route]
    /// The route `GET /stream` serves.
    public let defaultRoute: Route?
    private let byName: [String: Route]

    public init(routes: [Route], defaultName: String? = nil) {
        let byName = Dictionary(routes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.routes = routes
        self.byName = byName
        self.defaultRoute = defaultName.flatMap { byName[$0] } ?? routes.first
    }

    public subscript(name: String) -> Route? { byName[name] }

    public var names: [String] { routes.map(\.name) }
}

extension RouteTable {
    /// The routes of `config`; an empty route list means the demo route against this server's
    /// own test origin (listening on `port`).
    init(config: ProxyConfig, port: UInt16) {
        if config.routes.isEmpty {
            let demo = DemoRoute.make(port: port, prefix: config.prefix)
            self.init(routes: [Route(name: demo.name, upstreams: demo.upstreams, prefix: demo.prefix, coalesce: config.coalesce,
                                     cacheFor: config.coalesce ? .seconds(config.cacheFor) : .zero)])
            return
        }
        let routes = config.routes.map { r in
            let coalesce = r.coalesce ?? config.coalesce
            return Route(name: r.name, upstreams: r.upstreams.map(TransferRequest.init(url:)), prefix: r.prefix ?? config.prefix,
                         coalesce: coalesce, cacheFor: coalesce ? .seconds(r.cacheFor ?? config.cacheFor) : .zero)
        }
        self.init(routes: routes, defaultName: config.defaultRoute)
    }
}

/// The built-in route served when no routes are configured, so that a fresh checkout streams
/// something meaningful offline: upstreams on the server's own test origin that show the
/// interesting cases (different delays, a trickle, multi-byte text, an HTTP error status, a body
/// far larger than the prefix, a broken upstream).
enum DemoRoute {
    static func make(port: UInt16, prefix: Int) -> Route {
        let base = "http://127.0.0.1:\(port)/origin"
        let paths = [
            "/bytes/4096?delay=40",
            "/utf8/3000?delay=120&rate=16384",
            "/bytes/104857600?delay=10",
            "/status/404?delay=200",
            "/delay/600",
            "/malformed",
        ]
        return Route(name: "demo", upstreams: paths.map { TransferRequest(url: base + $0) }, prefix: prefix)
    }
}
