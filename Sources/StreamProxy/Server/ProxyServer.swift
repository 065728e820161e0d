import CurlStream
import EventLoop
import Foundation
import Logging

/// A running proxy: `workers` event-loop threads, each with its own listener on the shared port
/// (SO_REUSEPORT), its own curl multi handle and its own streams.
public final class ProxyServer: Sendable {
    /// The port every worker listens on.
    public let port: UInt16
    private let workers: [LoopThread<ProxyWorker, UInt16>]
    private let gate: StreamGate

    /// Binds and starts every worker; returns once all are serving.
    public init(config: ProxyConfig, logger: Logger) throws {
        let gate = StreamGate(limit: config.maxStreams)
        // One pool for the whole process: every worker's transfers take leases from it, so the
        // limits mean what the user wrote whatever `workers` is.
        let budget = ConnectionBudget(maxConnections: config.maxConnections,
                                      maxConnectionsPerHost: config.maxConnectionsPerHost,
                                      maxKeepalive: config.maxKeepalive, workers: config.workers)
        let metrics = ProxyMetrics(gate: gate, budget: budget)
        var workers: [LoopThread<ProxyWorker, UInt16>] = []
        var port = config.listenPort
        do {
            for n in 0..<config.workers {
                let bindPort = port
                let worker = try LoopThread<ProxyWorker, UInt16>(name: "worker-\(n)") { loop in
                    var log = logger
                    log[metadataKey: "worker"] = "\(n)"
                    let w = try ProxyWorker(loop: loop, index: n, config: config, gate: gate, budget: budget,
                                            metrics: metrics, port: bindPort, logger: log)
                    return (owner: w, info: w.server.port)
                }
                // Port 0 means "any": the first worker's choice is everyone's.
                port = worker.info
                workers.append(worker)
            }
        } catch {
            for w in workers { w.stopAndJoin() }
            throw error
        }
        self.port = port
        self.workers = workers
        self.gate = gate
    }

    /// Streams open across all workers.
    public var openStreams: Int { gate.count }

    /// Graceful shutdown, first half: every worker closes its listener and refuses new streams
    /// (503); open streams go on. Returns at once.
    public func startDraining() {
        for w in workers { w.execute { $0.startDraining() } }
    }

    /// Ends every open stream with a shutdown `done`, frees every resource, and returns once
    /// all worker threads have exited.
    public func stop() {
        for w in workers {
            w.stopAndJoin { worker, stop in worker.shutdown(completion: stop) }
        }
    }
}
