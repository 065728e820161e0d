import EventLoop

/// The HTTP endpoints of PRODUCT.md §4 on one worker: routes each request and answers the small
/// ones itself; `/stream` goes to ``StreamEndpoint`` and, in demo mode, `/origin/` to the test
/// origin. A request it cannot serve gets an ``ErrorResponse``.
final class Endpoints {
    let loop: EventLoop
    private let routes: RouteTable
    private let cors: CORSPolicy
    private let metrics: ProxyMetrics
    private let lifecycle: WorkerLifecycle
    private let streams: StreamEndpoint
    private let origin: TestOrigin?

    /// The page at `/` (Resources/index.html, compiled in): runs a route's fan-out in the
    /// browser with `EventSource` and shows one card per upstream filling in live.
    /// Self-contained (inline CSS and JS, nothing fetched but `/routes` and the stream), so it
    /// works offline.
    ///
    /// Hooks for the browser tests: each card has `data-i` and `data-state` (waiting, streaming,
    /// done, error); `#summary` gets `data-state="done"` after the `done` event;
    /// `window.__streamProxy` holds `{fanouts, done, events}` (and `readyState`, the
    /// EventSource's).
    static let indexPage: [UInt8] = PackageResources.index_html

    init(loop: EventLoop, routes: RouteTable, cors: CORSPolicy, metrics: ProxyMetrics, lifecycle: WorkerLifecycle,
         streams: StreamEndpoint, origin: TestOrigin?) {
        self.loop = loop
        self.routes = routes
        self.cors = cors
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.streams = streams
        self.origin = origin
    }

    func handle(_ request: HTTPRequest) {
        loop.preconditionInEventLoop()
        let corsHeaders = cors.responseHeaders(origin: request.header("Origin"))
        do {
            try dispatch(request, cors: corsHeaders)
        } catch {
            error.send(to: request, extraHeaders: corsHeaders)
        }
    }

    private func dispatch(_ request: HTTPRequest, cors corsHeaders: [(String, String)]) throws(ErrorResponse) {
        let path = request.path
        if request.method == .OPTIONS, request.header("Access-Control-Request-Method") != nil {
            return try preflight(request)
        }
        if path == "/stream" || path.hasPrefix("/stream/") {
            return try streams.handle(request, routeName: path == "/stream" ? nil : String(path.dropFirst("/stream/".count)),
                                      cors: corsHeaders)
        }
        if path.hasPrefix("/origin/"), let origin {
            return origin.handle(request, path: String(path.dropFirst("/origin".count)))
        }
        guard request.method == .GET || request.method == .HEAD else {
            throw .methodNotAllowed(request.method, allow: "GET, HEAD")
        }
        switch path {
        case "/":
            request.respond(status: 200, headers: [("Content-Type", "text/html; charset=utf-8")] + corsHeaders, body: Self.indexPage)
        case "/healthz":
            // 503 while draining, on the connections the draining worker still serves (its
            // listener is closed, so a check on a new connection is refused, or reaches the new
            // process on a shared port).
            if lifecycle.isDraining {
                request.respond(status: 503, headers: [("Content-Type", "text/plain")] + corsHeaders, text: "shutting down")
            } else {
                request.respond(status: 200, headers: [("Content-Type", "text/plain")] + corsHeaders, text: "ok")
            }
        case "/routes":
            request.respond(status: 200, headers: [jsonType] + corsHeaders, body: routesJSON())
        case "/metrics":
            request.respond(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")] + corsHeaders,
                            body: metrics.render())
        default:
            throw ErrorResponse(status: 404, "not found", [("path", .string(path))])
        }
    }

    /// A CORS preflight: the grant for an allowed origin, 403 for any other.
    private func preflight(_ request: HTTPRequest) throws(ErrorResponse) {
        guard let headers = cors.preflightHeaders(origin: request.header("Origin"),
                                                  requestedHeaders: request.header("Access-Control-Request-Headers")) else {
            throw ErrorResponse(status: 403, "origin not allowed", [("origin", .string(request.header("Origin") ?? ""))])
        }
        request.respond(status: 204, headers: headers)
    }

    private func routesJSON() -> [UInt8] {
        var w = JSONWriter()
        w.value(.object([
            ("default", routes.defaultRoute.map { .string($0.name) } ?? .null),
            ("routes", .array(routes.routes.map { r in
                .object([
                    ("name", .string(r.name)),
                    ("prefix", .int(r.prefix)),
                    ("coalesce", .bool(r.coalesce)),
                    ("cacheFor", .number(r.cacheFor.seconds)),
                    ("upstreams", .array(r.upstreams.map { .string($0.url) })),
                ])
            })),
        ]))
        return w.bytes
    }
}
