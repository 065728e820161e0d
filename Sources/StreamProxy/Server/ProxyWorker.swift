import CurlStream
import EventLoop
import Logging

/// Everything one worker thread serves: its HTTP server, its curl multi handle, its streams.
///
/// Created and used on its own loop only. Workers share nothing mutable but the stream gate.
final class ProxyWorker {
    let loop: EventLoop
    let curl: CurlMulti
    let config: ProxyConfig
    let gate: StreamGate
    let logger: Logger
    private(set) var server: HTTPServer!
    private(set) var routes: RouteTable!
    private(set) var origin: TestOrigin?
    private let settings: StreamSettings
    private let scratch = SessionScratch()
    private let cors: CORSPolicy
    /// Open streams, kept alive until they finish.
    private var sessions: [ObjectIdentifier: StreamSession] = [:]
    /// Shutting down: no new streams, /healthz says so.
    private var draining = false
    private var shutdownTimer: LoopTimer?
    let metrics: WorkerMetrics
    private let proxyMetrics: ProxyMetrics

    init(loop: EventLoop, index: Int, config: ProxyConfig, gate: StreamGate, budget: ConnectionBudget,
         metrics: ProxyMetrics, port: UInt16, logger: Logger) throws {
        self.loop = loop
        self.config = config
        self.gate = gate
        self.logger = logger
        self.curl = try CurlMulti(loop: loop, options: config.transferOptions, budget: budget, worker: index)
        self.proxyMetrics = metrics
        self.metrics = metrics.addWorker(index, curl: curl.counters)
        self.cors = CORSPolicy(origins: config.cors, credentials: config.corsCredentials)
        self.settings = StreamSettings(streamBuffer: config.streamBuffer, heartbeat: config.heartbeat,
                                       readTimeout: config.readTimeout, retryMilliseconds: 2000)
        var serverOptions = HTTPServerOptions()
        serverOptions.requestHeaderTimeout = config.requestHeaderTimeout
        self.server = try HTTPServer(loop: loop, host: config.listenHost, port: port, options: serverOptions) { [unowned self] request in
            self.handle(request)
        }
        self.routes = RouteTable(config: config, port: server.port)
        if config.routes.isEmpty {
            origin = TestOrigin(loop: loop) { [unowned self] in self.server }
        }
    }

    /// Open streams on this worker.
    var openStreams: Int { sessions.count }

    /// Client connections counted into the metrics so far.
    private var connectionsCounted = 0

    /// Mirrors the server's accepted-connection count into the metrics (a connection is counted
    /// at its first request, so checking on each request is exact).
    private func countNewConnections() {
        let accepted = server.connectionsAccepted
        if accepted < connectionsCounted { connectionsCounted = 0 }  // the demo origin's /stats/reset
        guard accepted > connectionsCounted else { return }
        metrics.clientConnections.increment(by: Int64(accepted - connectionsCounted))
        connectionsCounted = accepted
    }

    // MARK: - Routing

    private func handle(_ request: HTTPRequest) {
        countNewConnections()
        let corsHeaders = cors.responseHeaders(origin: request.header("Origin"))
        do {
            try dispatch(request, cors: corsHeaders)
        } catch {
            error.send(to: request, extraHeaders: corsHeaders)
        }
    }

    private func dispatch(_ request: HTTPRequest, cors corsHeaders: [(String, String)]) throws(ErrorResponse) {
        if let limit = request.limitExceeded {
            let message = limit == .requestLine ? "request line too long" : "request headers too large"
            throw ErrorResponse(status: limit.status, message, headers: [("Connection", "close")])
        }
        let path = request.path
        if request.method == .OPTIONS, request.header("Access-Control-Request-Method") != nil {
            guard let headers = cors.preflightHeaders(origin: request.header("Origin"),
                                                      requestedHeaders: request.header("Access-Control-Request-Headers")) else {
                throw ErrorResponse(status: 403, "origin not allowed", [("origin", .string(request.header("Origin") ?? ""))])
            }
            return request.respond(status: 204, headers: headers)
        }
        if path == "/stream" || path.hasPrefix("/stream/") {
            return try handleStream(request, routeName: path == "/stream" ? nil : String(path.dropFirst("/stream/".count)),
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
            request.respond(status: 200, headers: [("Content-Type", "text/html; charset=utf-8")] + corsHeaders, body: IndexPage.html)
        case "/healthz":
            if draining {
                request.respond(status: 503, headers: [("Content-Type", "text/plain")] + corsHeaders, text: "shutting down")
            } else {
                request.respond(status: 200, headers: [("Content-Type", "text/plain")] + corsHeaders, text: "ok")
            }
        case "/routes":
            request.respond(status: 200, headers: [jsonType] + corsHeaders, body: routesJSON())
        case "/metrics":
            request.respond(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")] + corsHeaders,
                            body: proxyMetrics.render())
        default:
            throw ErrorResponse(status: 404, "not found", [("path", .string(path))])
        }
    }

    private func routesJSON() -> [UInt8] {
        var w = JSONWriter()
        w.value(.object([
            ("default", routes.defaultRoute.map { .string($0.name) } ?? .null),
            ("routes", .array(routes.routes.map { r in
                .object([
                    ("name", .string(r.name)),
                    ("prefix", .int(r.prefix)),
                    ("upstreams", .array(r.upstreams.map { .string($0.url) })),
                ])
            })),
        ]))
        return w.bytes
    }

    // MARK: - Streams

    private func handleStream(_ request: HTTPRequest, routeName: String?, cors corsHeaders: [(String, String)])
        throws(ErrorResponse)
    {
        guard request.method == .GET else { throw .methodNotAllowed(request.method, allow: "GET") }
        // A browser EventSource reconnects after `done`; 204 tells it to stop.
        if request.header("Last-Event-ID") == "done" {
            return request.respond(status: 204, headers: corsHeaders)
        }
        guard !draining else {
            throw ErrorResponse(status: 503, "shutting down", headers: [("Retry-After", "1"), ("Connection", "close")])
        }
        let streamRequest = try parse(request, routeName: routeName)
        guard gate.tryEnter() else {
            metrics.rejected.increment()
            throw ErrorResponse(status: 503, "too many streams", [("maxStreams", .int(gate.limit))],
                                headers: [("Retry-After", "1")])
        }
        let stream = request.startStream(status: 200, headers: [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
        ] + corsHeaders)
        let session = StreamSession(request: streamRequest, settings: settings, stream: stream, curl: curl, scratch: scratch,
                                    metrics: metrics)
        let key = ObjectIdentifier(session)
        sessions[key] = session
        metrics.streams.increment()
        session.onFinished = { [unowned self] _ in
            self.sessions[key] = nil
            self.gate.leave()
        }
        session.start()
    }

    private func parse(_ request: HTTPRequest, routeName: String?) throws(ErrorResponse) -> StreamRequest {
        let route: Route
        if let routeName, !routeName.isEmpty {
            guard let r = routes[routeName] else {
                throw ErrorResponse(status: 404, "unknown route", [
                    ("route", .string(routeName)), ("routes", .array(routes.names.map { .string($0) })),
                ])
            }
            route = r
        } else {
            guard let r = routes.defaultRoute else { throw ErrorResponse(status: 404, "no routes configured") }
            route = r
        }
        var prefix = route.prefix
        if let value = request.queryValue("prefix") {
            guard let n = Int(value), (1...config.maxPrefix).contains(n) else {
                throw .badParameter("prefix", value, "must be a whole number of bytes from 1 to \(config.maxPrefix)")
            }
            prefix = n
        }
        var order = StreamOrder.completion
        if let value = request.queryValue("order") {
            guard let o = StreamOrder(rawValue: value) else {
                throw .badParameter("order", value, "must be completion or sequential")
            }
            order = o
        }
        guard route.upstreams.count <= config.maxUpstreamsPerStream else {
            throw ErrorResponse(status: 400, "too many upstreams", [
                ("route", .string(route.name)), ("upstreams", .int(route.upstreams.count)),
                ("maxUpstreamsPerStream", .int(config.maxUpstreamsPerStream)),
            ])
        }
        return StreamRequest(route: route, prefix: prefix, order: order)
    }

    /// Stops taking new connections and streams; open streams go on.
    func startDraining() {
        draining = true
        server.stopAccepting()
    }

    /// Ends every open stream with a `done` that says the server is shutting down, then calls
    /// `completion` once what was written has reached the clients' sockets (at most 1 s later).
    func shutdown(completion: @escaping () -> Void) {
        draining = true
        server.stopAccepting()
        for session in Array(sessions.values) { session.shutdown() }
        let deadline = ContinuousClock.now + .seconds(1)
        shutdownTimer = LoopTimer(loop: loop) { [unowned self] in
            if self.server.pendingOutputBytes == 0 || ContinuousClock.now >= deadline {
                self.shutdownTimer = nil
                completion()
            } else {
                self.shutdownTimer?.schedule(after: 0.01)
            }
        }
        shutdownTimer?.schedule(after: 0)
    }
}

extension ProxyConfig {
    /// The upstream transfers' settings (the connection limits go to the ConnectionBudget).
    var transferOptions: TransferOptions {
        var o = TransferOptions()
        o.keepaliveExpiry = keepaliveExpiry
        o.connectTimeout = connectTimeout
        o.totalTimeout = totalTimeout
        o.poolTimeout = poolTimeout
        o.drainLimit = drainLimit
        o.caFile = caFile
        return o
    }
}
