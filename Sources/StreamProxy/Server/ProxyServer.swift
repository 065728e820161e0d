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
        var workers: [LoopThread<ProxyWorker, UInt16>] = []
        var port = config.listenPort
        do {
            for n in 0..<config.workers {
                let bindPort = port
                let worker = try LoopThread<ProxyWorker, UInt16>(name: "worker-\(n)") { loop in
                    var log = logger
                    log[metadataKey: "worker"] = "\(n)"
                    let w = try ProxyWorker(loop: loop, config: config, gate: gate, port: bindPort, logger: log)
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

    /// Ends every open stream with a shutdown `done`, frees every resource, and returns once
    /// all worker threads have exited.
    public func stop() {
        for w in workers {
            w.stopAndJoin { worker in worker.shutdownStreams() }
        }
    }
}
