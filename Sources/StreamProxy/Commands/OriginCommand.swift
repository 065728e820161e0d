import ArgumentParser
import EventLoop
import Logging

/// `stream-proxy origin`: the deterministic test origin alone.
struct OriginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "origin",
        abstract: "Serve the built-in test origin (bodies, delays, trickles, stalls, resets, malformed HTTP, redirects)."
    )

    @Option(name: .long, help: "Address to listen on, host:port.")
    var listen: String = "127.0.0.1:8081"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() throws {
        let (host, port) = try ConfigSyntax.listenAddress(listen, field: "listen")
        let logger = Logging.makeLogger(label: "stream-proxy-origin", level: logLevel)
        // Nothing to drain: the first signal stops. Caught before the port opens.
        let control = try ControlLoop(grace: .zero, logger: logger)
        let thread = try LoopThread<OriginServer, UInt16>(name: "origin") { loop in
            let origin = try OriginServer(loop: loop, host: host, port: port)
            return (owner: origin, info: origin.port)
        }
        logger.info("test origin listening on http://\(host):\(thread.info)")
        control.run { whenIdle in whenIdle() }
        thread.stopAndJoin()
    }
}
