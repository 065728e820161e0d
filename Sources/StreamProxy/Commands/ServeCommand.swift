import ArgumentParser
import EventLoop
import Foundation
import Glibc
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

        let server = try ProxyServer(config: config, logger: logger)
        let mode = config.routes.isEmpty ? "demo route on the built-in origin" : "\(config.routes.count) route(s)"
        logger.info("listening on http://\(config.listenHost):\(server.port) with \(config.workers) worker(s), \(mode)")

        // First signal: drain. Open streams get `shutdownGrace` to finish; a second signal
        // stops at once. Either way, streams still open then get a `done` that says so.
        let control = try ControlLoop(logger: logger) { control, _ in
            guard control.signals == 1 else { return control.stop() }
            server.startDraining()
            logger.info("draining \(server.openStreams) stream(s) for up to \(config.shutdownGrace) s")
            let deadline = ContinuousClock.now + .seconds(config.shutdownGrace)
            control.repeatEvery(0.05) {
                guard server.openStreams > 0, ContinuousClock.now < deadline else {
                    control.stop()
                    return false
                }
                return true
            }
        }
        control.run()
        logger.info("shutting down with \(server.openStreams) stream(s) open")
        server.stop()
        logger.info("stopped")
    }
}
