import CurlStream
import EventLoop

/// `GET /stream/<route>` on one worker: checks the request (PRODUCT.md §4 errors), admits it
/// through the process-wide stream gate, and starts its session, which the worker's
/// ``WorkerLifecycle`` then keeps.
final class StreamEndpoint {
    let loop: EventLoop
    private let routes: RouteTable
    private let maxPrefix: Int
    private let maxUpstreamsPerStream: Int
    private let gate: StreamGate
    private let curl: CurlMulti
    private let metrics: WorkerMetrics
    private let lifecycle: WorkerLifecycle
    private let settings: StreamSettings
    private let scratch = SessionScratch()

    init(loop: EventLoop, config: ProxyConfig, routes: RouteTable, gate: StreamGate, curl: CurlMulti,
         metrics: WorkerMetrics, lifecycle: WorkerLifecycle) {
        self.loop = loop
        self.routes = routes
        maxPrefix = config.maxPrefix
        maxUpstreamsPerStream = config.maxUpstreamsPerStream
        self.gate = gate
        self.curl = curl
        self.metrics = metrics
        self.lifecycle = lifecycle
        settings = StreamSettings(streamBuffer: config.streamBuffer, heartbeat: config.heartbeat, readTimeout: config.readTimeout,
                                  retryMilliseconds: 2000)
    }

    /// Starts the stream `request` asks for, or throws the error that says why not.
    ///
    /// - Parameter routeName: the path after `/stream/`; nil or empty for the default route.
    func handle(_ request: HTTPRequest, routeName: String?, cors corsHeaders: [(String, String)]) throws(ErrorResponse) {
        loop.preconditionInEventLoop()
        guard request.method == .GET else { throw .methodNotAllowed(request.method, allow: "GET") }
        // A browser EventSource reconnects after `done`; 204 tells it to stop.
        if request.header("Last-Event-ID") == "done" {
            return request.respond(status: 204, headers: corsHeaders)
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
        let key = lifecycle.adopt(session, on: stream)
        metrics.streams.increment()
        session.onFinished = { [unowned lifecycle, gate] _ in
            gate.leave()
            lifecycle.finished(key)
        }
        session.start()
    }

    /// The route, prefix and order `request` asks for, each checked.
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
            guard let n = Int(value), (1...maxPrefix).contains(n) else {
                throw .badParameter("prefix", value, "must be a whole number of bytes from 1 to \(maxPrefix)")
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
        guard route.upstreams.count <= maxUpstreamsPerStream else {
            throw ErrorResponse(status: 400, "too many upstreams", [
                ("route", .string(route.name)), ("upstreams", .int(route.upstreams.count)),
                ("maxUpstreamsPerStream", .int(maxUpstreamsPerStream)),
            ])
        }
        return StreamRequest(route: route, prefix: prefix, order: order)
    }
}
