import EventLoop

/// The test origin on a listener of its own (`stream-proxy origin`, and the tests).
public final class OriginServer {
    public let server: HTTPServer
    private var origin: TestOrigin!

    public init(loop: EventLoop, host: String, port: UInt16) throws(EventError) {
        var options = HTTPServerOptions()
        options.reusePort = false
        var handler: ((HTTPRequest) -> Void)?
        server = try HTTPServer(loop: loop, host: host, port: port, options: options) { handler?($0) }
        origin = TestOrigin(loop: loop) { [unowned server] in server }
        handler = { [unowned self] request in
            // Paths work with and without the `/origin` mount prefix that `serve` uses.
            let path = request.path
            let local = path.utf8.starts(with: "/origin/".utf8) ? String(path.dropFirst("/origin".count)) : path
            self.origin.handle(request, path: local)
        }
    }

    public var port: UInt16 { server.port }
}
