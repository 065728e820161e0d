import CurlStream
import EventLoop

/// One worker thread's share of the proxy: its HTTP server, its curl multi handle, and the three
/// parts that use them: the ``Endpoints`` that answer requests, the ``StreamEndpoint`` that
/// starts streams, and the ``WorkerLifecycle`` that keeps them and ends them.
///
/// Created and used on its own loop only. Workers share nothing mutable but the stream gate, the
/// connection budget and the metrics registry; the route table is one immutable value.
final class ProxyWorker {
    let loop: EventLoop
    /// The routes every worker serves (this one may have built them: see `init`).
    let routes: RouteTable
    private let server: HTTPServer
    private let curl: CurlMulti
    private let lifecycle: WorkerLifecycle
    private let endpoints: Endpoints
    private let metrics: WorkerMetrics
    /// Client connections counted into the metrics so far.
    private var connectionsCounted = 0

    /// Binds `port` (0: any) and builds the worker's parts.
    ///
    /// - Parameter routes: gives the route table once the port is bound. The demo route points
    ///   at this server's own origin, so with port 0 the first worker builds the table from the
    ///   port it got, and the others are handed that same table.
    init(loop: EventLoop, index: Int, config: ProxyConfig, gate: StreamGate, budget: ConnectionBudget,
         metrics: ProxyMetrics, port: UInt16, routes: (_ boundPort: UInt16) -> RouteTable) throws {
        loop.preconditionInEventLoop()
        self.loop = loop
        curl = try CurlMulti(loop: loop, options: config.transferOptions, budget: budget, worker: index)
        let logger = Logging.makeLogger(label: "stream-proxy", level: config.logLevel)
        curl.onWarning = { logger.warning("worker \(index): \($0)") }
        // Every worker reads the same files: what went wrong is said once.
        if index == 0, let problem = curl.resolverProblem { logger.warning("\(problem)") }
        self.metrics = metrics.addWorker(index, curl: curl.counters)
        // The server hands requests to `handle`, which exists once `self` does.
        var handler: ((HTTPRequest) -> Void)?
        var options = config.serverOptions
        // The first worker claims the port, so that another process serving it is found out;
        // the others join it (asked-for sharing: all of them join).
        options.claimPort = index == 0 && !config.reusePort
        let server = try HTTPServer(loop: loop, host: config.listenHost, port: port, options: options) {
            handler?($0)
        }
        self.server = server
        self.routes = routes(server.port)
        lifecycle = WorkerLifecycle(loop: loop, server: server)
        let streams = StreamEndpoint(loop: loop, config: config, routes: self.routes, gate: gate, curl: curl,
                                     metrics: self.metrics, lifecycle: lifecycle)
        let origin = config.routes.isEmpty ? TestOrigin(loop: loop) { [unowned server] in server } : nil
        endpoints = Endpoints(loop: loop, routes: self.routes, cors: CORSPolicy(origins: config.cors, credentials: config.corsCredentials),
                              metrics: metrics, lifecycle: lifecycle, streams: streams, origin: origin)
        handler = { [unowned self] request in
            self.countNewConnections()
            self.endpoints.handle(request)
        }
    }

    /// The port this worker listens on.
    var port: UInt16 { server.port }

    /// Mirrors the server's accepted-connection count into the metrics (a connection is counted
    /// at its first request, so checking on each request is exact).
    private func countNewConnections() {
        let accepted = server.connectionsAccepted
        guard accepted > connectionsCounted else { return }
        metrics.clientConnections.increment(by: Int64(accepted - connectionsCounted))
        connectionsCounted = accepted
    }

    /// Stops taking new connections; open streams go on. `whenIdle` runs (on this loop) once
    /// none is left and nothing accepted still owes a request.
    func startDraining(whenIdle: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        lifecycle.startDraining(whenIdle: whenIdle)
    }

    /// Ends every open stream with a shutdown `done`; `completion` runs once what the streams
    /// wrote has reached the clients' sockets (at most ``FlushPlan/defaultBound`` later).
    func shutdown(completion: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        lifecycle.shutdown(completion: completion)
    }
}
