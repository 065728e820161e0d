import ArgumentParser
import EventLoop
import Logging

/// `stream-proxy serve`: the proxy.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve SSE fan-out streams (with no routes configured: the demo route on the built-in test origin)."
    )

    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.resolve()
        let logger = Logging.makeLogger(label: "stream-proxy", level: config.logLevel)
        for warning in config.warnings { logger.warning("\(warning)") }

        // First signal: drain. Open streams get `shutdownGrace` to finish; a second signal
        // stops at once. Either way, streams still open then get a `done` that says so. Caught
        // before the port opens, so that no signal finds the process serving and unguarded.
        let control = try ControlLoop(grace: .seconds(config.shutdownGrace), logger: logger)
        let server = try ProxyServer(config: config)
        let mode = config.routes.isEmpty ? "demo route on the built-in origin" : "\(config.routes.count) route(s)"
        logger.info("listening on http://\(config.listenHost):\(server.port) with \(config.workers) worker(s), \(mode)")
        control.run { whenIdle in
            logger.info("draining \(server.openStreams) stream(s) for up to \(formatSeconds(config.shutdownGrace))")
            server.startDraining(whenIdle: whenIdle)
        }
        logger.info("shutting down with \(server.openStreams) stream(s) open")
        server.stop()
        logger.info("stopped")
    }
}
