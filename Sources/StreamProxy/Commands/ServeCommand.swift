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

        try runUntilSignalled(logger: logger)
        logger.info("shutting down")
        server.stop()
        logger.info("stopped")
    }
}

/// Runs a control loop on the calling thread until SIGINT or SIGTERM.
func runUntilSignalled(logger: Logger) throws {
    let control = try EventLoop()
    var watchers: [SignalWatcher] = []
    for sig in [SIGINT, SIGTERM] {
        watchers.append(try SignalWatcher(loop: control, signal: sig) { [unowned control] signal in
            logger.info("received signal \(signal)")
            control.stop()
        })
    }
    control.run()
    watchers.removeAll()
}
