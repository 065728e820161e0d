import CurlStream
import EventLoop
import Glibc
import Synchronization

/// A running proxy: `workers` event-loop threads, each with its own listener on the shared port
/// (SO_REUSEPORT), its own curl multi handle and its own streams. Unless `reusePort` is set, the
/// first worker claims the port for the process (``AddressInUse``).
public final class ProxyServer: Sendable {
    /// The port every worker listens on.
    public let port: UInt16
    private let workers: [LoopThread<ProxyWorker, Bound>]
    private let gate: StreamGate

    /// Binds and starts every worker; returns once all are serving.
    public init(config: ProxyConfig) throws {
        let gate = StreamGate(limit: config.maxStreams)
        // One pool for the whole process: every worker's transfers take leases from it, so the
        // limits mean what the user wrote whatever `workers` is.
        let budget = ConnectionBudget(maxConnections: config.maxConnections,
                                      maxConnectionsPerHost: config.maxConnectionsPerHost,
                                      maxKeepalive: config.maxKeepalive, workers: config.workers)
        let metrics = ProxyMetrics(gate: gate, budget: budget)
        var workers: [LoopThread<ProxyWorker, Bound>] = []
        // The first worker binds (port 0 means "any") and builds the route table from the port it
        // got; every other worker binds that port and serves that table.
        var bound: Bound?
        do {
            for n in 0..<config.workers {
                let first = bound
                let worker = try LoopThread<ProxyWorker, Bound>(name: "worker-\(n)") { loop in
                    let w = try ProxyWorker(loop: loop, index: n, config: config, gate: gate, budget: budget,
                                            metrics: metrics, port: first?.port ?? config.listenPort) { port in
                        first?.routes ?? RouteTable(config: config, port: port)
                    }
                    return (owner: w, info: Bound(port: w.port, routes: w.routes))
                }
                bound = bound ?? worker.info
                workers.append(worker)
            }
        } catch {
            for w in workers { w.stopAndJoin() }
            if let failure = error as? EventError, failure.errno == EADDRINUSE {
                throw AddressInUse(host: config.listenHost, port: bound?.port ?? config.listenPort, reusePort: config.reusePort)
            }
            throw error
        }
        self.port = bound?.port ?? config.listenPort
        self.workers = workers
        self.gate = gate
    }

    /// Streams open across all workers.
    public var openStreams: Int { gate.count }

    /// Graceful shutdown, first half: every worker closes its listener (once the connections
    /// queued on it are accepted) and closes each connection after its response; open streams
    /// go on. Returns at once; `whenIdle` runs, on some worker's thread,
    /// once no stream is open on any worker.
    public func startDraining(whenIdle: @escaping @Sendable () -> Void) {
        let countdown = Countdown(workers.count, then: whenIdle)
        for w in workers { w.execute { $0.startDraining(whenIdle: countdown.arrive) } }
    }

    /// Ends every open stream with a shutdown `done`, frees every resource, and returns once
    /// all worker threads have exited.
    public func stop() {
        for w in workers {
            w.stopAndJoin { worker, stop in worker.shutdown(completion: stop) }
        }
    }
}

/// What the first worker publishes: the port every worker binds and the route table they share.
private struct Bound: Sendable {
    let port: UInt16
    let routes: RouteTable
}

/// Runs an action once `count` parties have arrived, on the thread of the last one.
private final class Countdown: Sendable {
    private let left: Atomic<Int>
    private let action: @Sendable () -> Void

    init(_ count: Int, then action: @escaping @Sendable () -> Void) {
        left = Atomic(count)
        self.action = action
    }

    @Sendable func arrive() {
        if left.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { action() }
    }
}
