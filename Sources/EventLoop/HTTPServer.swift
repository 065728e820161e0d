import CEvent
import Glibc

/// Settings of an ``HTTPServer`` that protect it from slow or oversized requests.
public struct HTTPServerOptions: Sendable {
    /// Seconds a client may take to send a complete request (and an idle keep-alive connection
    /// may stay open). Lifted on a connection once it carries a streaming response.
    public var requestHeaderTimeout: Double = 10
    /// The longest request line (method, target, version), in bytes; longer gets 414.
    public var maxRequestLine: Int = 8 * 1024
    /// The largest request line plus headers, in bytes; larger gets 431.
    public var maxHeadersSize: Int = 16 * 1024
    /// Beyond this, evhttp stops reading the request and answers 400 itself (the limits above
    /// are checked on requests within it, so that they can be answered properly).
    public var hardHeadersLimit: Int = 64 * 1024
    /// The largest request body, in bytes.
    public var maxBodySize: Int = 64 * 1024
    /// `listen(2)` backlog.
    public var backlog: Int32 = 1024
    /// Bind with `SO_REUSEPORT`, so that several loops can each own a listener on one port and
    /// let the kernel spread connections across them.
    public var reusePort: Bool = true
    /// Seconds a streaming response may make no write progress (a client that stopped reading)
    /// before its connection is closed.
    public var streamWriteTimeout: Double = 120

    public init() {}
}

/// An HTTP/1.1 server on one ``EventLoop``, built on libevent's evhttp.
///
/// evhttp parses requests; this type routes each one to `handler`, which answers at once with
/// ``HTTPRequest/respond(status:headers:body:)`` or takes it over with
/// ``HTTPRequest/startStream(status:headers:)``. The server owns every connection's close
/// callback (one per connection in libevent), so it can count connections and tell a streaming
/// response when its client goes away.
public final class HTTPServer {
    public let loop: EventLoop
    /// The bound port (useful when binding port 0).
    public let port: UInt16
    let options: HTTPServerOptions
    private let http: OpaquePointer
    private var boundSocket: OpaquePointer?
    private let handler: (HTTPRequest) -> Void
    /// Connections that have sent at least one request, keyed by their `evhttp_connection`.
    private var connections: [OpaquePointer: ConnectionRecord] = [:]
    /// New connections that have not completed a first request, keyed by their bufferevent
    /// (which we hold a reference to): each must do so within `requestHeaderTimeout`.
    private var awaitingFirstRequest: [OpaquePointer: LoopTimer] = [:]
    /// Connections whose deadline passed, given one more loop turn.
    private var overdue: Set<OpaquePointer> = []
    /// Streams written to in this loop turn, flushed together at its end (see ``scheduleFlush``).
    private var needsFlush: [WeakStream] = []
    /// Activated when the first stream of a turn needs a flush; runs after the turn's other
    /// callbacks.
    private var flushEvent: OpaquePointer?

    /// Connections closed because their first request took longer than `requestHeaderTimeout`.
    public private(set) var slowRequestsDropped = 0

    /// Connections accepted since start (counted at their first request).
    public private(set) var connectionsAccepted = 0
    /// Connections open now.
    public var openConnections: Int { connections.count }

    /// Binds `host:port` and starts serving on `loop`.
    public init(loop: EventLoop, host: String, port: UInt16, options: HTTPServerOptions = .init(),
                handler: @escaping (HTTPRequest) -> Void) throws(EventError) {
        loop.preconditionInEventLoop()
        ignoreSIGPIPE
        self.loop = loop
        self.options = options
        self.handler = handler
        guard let http = evhttp_new(loop.base) else { throw EventError("evhttp_new") }
        self.http = http

        var tv = timeval(seconds: options.requestHeaderTimeout)
        evhttp_set_timeout_tv(http, &tv)
        evhttp_set_max_headers_size(http, max(options.hardHeadersLimit, options.maxHeadersSize))
        evhttp_set_max_body_size(http, options.maxBodySize)
        // Every method reaches the handler, so that it can answer 405 with `Allow` itself.
        evhttp_set_allowed_methods(http, UInt16(0x1FF))

        do throws(EventError) {
            let listener = try Self.listen(loop: loop, host: host, port: port, options: options)
            guard let bound = evhttp_bind_listener(http, listener) else {
                evconnlistener_free(listener)
                throw EventError("evhttp_bind_listener")
            }
            self.boundSocket = bound
            self.port = Self.boundPort(of: evconnlistener_get_fd(listener))
        } catch {
            evhttp_free(http)
            throw error
        }
        guard let flush = event_new(loop.base, -1, 0, flushCallback, Unmanaged.passUnretained(self).toOpaque()) else {
            evhttp_free(http)
            throw EventError("event_new")
        }
        flushEvent = flush
        evhttp_set_gencb(http, requestCallback, Unmanaged.passUnretained(self).toOpaque())
        evhttp_set_bevcb(http, newConnectionCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        // Streams still open are cut; then no close callback may reach this object while
        // evhttp_free tears the connections down.
        for (conn, record) in connections {
            evhttp_connection_set_closecb(conn, nil, nil)
            record.stream?.serverClosing()
        }
        connections.removeAll()
        if let flushEvent { event_free(flushEvent) }
        for bev in awaitingFirstRequest.keys { bufferevent_decref(bev) }
        awaitingFirstRequest.removeAll()
        evhttp_free(http)
    }

    /// Bytes queued on all client connections and not yet accepted by their sockets.
    public var pendingOutputBytes: Int {
        connections.keys.reduce(0) { sum, conn in
            guard let bev = evhttp_connection_get_bufferevent(conn) else { return sum }
            return sum + evbuffer_get_length(bufferevent_get_output(bev))
        }
    }

    /// Closes the listening socket: no new connections; open ones are served until they close.
    public func stopAccepting() {
        loop.preconditionInEventLoop()
        guard let bound = boundSocket else { return }
        boundSocket = nil
        evhttp_del_accept_socket(http, bound)
    }

    /// Resets ``connectionsAccepted`` to 0.
    public func resetConnectionCounts() {
        connectionsAccepted = 0
    }

    private static func listen(loop: EventLoop, host: String, port: UInt16,
                               options: HTTPServerOptions) throws(EventError) -> OpaquePointer {
        // Only IP literals are bound (no DNS on a loop thread); "localhost" is the one name
        // users write for loopback.
        let host = host == "localhost" ? "127.0.0.1" : host
        var storage = sockaddr_storage()
        let length: socklen_t
        var addr4 = sockaddr_in()
        var addr6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &addr4.sin_addr) == 1 {
            addr4.sin_family = sa_family_t(AF_INET)
            addr4.sin_port = port.bigEndian
            withUnsafeBytes(of: addr4) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, host, &addr6.sin6_addr) == 1 {
            addr6.sin6_family = sa_family_t(AF_INET6)
            addr6.sin6_port = port.bigEndian
            withUnsafeBytes(of: addr6) { src in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            throw EventError("listen: '\(host)' is not an IP address", errno: EINVAL)
        }
        var flags = UInt32(LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE)
        if options.reusePort { flags |= UInt32(LEV_OPT_REUSEABLE_PORT) }
        let listener = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                evconnlistener_new_bind(loop.base, nil, nil, flags, options.backlog, $0, Int32(length))
            }
        }
        guard let listener else { throw EventError("bind \(host):\(port)") }
        return listener
    }

    private static func boundPort(of fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port) }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port) }
        default:
            return 0
        }
    }

    // MARK: - Callbacks from libevent

    /// evhttp accepted a connection and wants its bufferevent. evhttp's own timeout restarts
    /// with every byte, so a client trickling its headers (slowloris) would never hit it: a
    /// deadline for the whole first request closes such connections. The extra reference and
    /// BEV_OPT_CLOSE_ON_FREE keep the socket ours until the deadline is settled, so it can never
    /// shut down a reused descriptor.
    fileprivate func newConnection(_ base: OpaquePointer) -> OpaquePointer? {
        guard let bev = bufferevent_socket_new(base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else { return nil }
        bufferevent_incref(bev)
        let timer = LoopTimer(loop: loop) { [unowned self] in self.firstRequestTooSlow(bev) }
        timer.schedule(after: options.requestHeaderTimeout)
        awaitingFirstRequest[bev] = timer
        return bev
    }

    private func firstRequestTooSlow(_ bev: OpaquePointer) {
        guard let timer = awaitingFirstRequest[bev] else { return }
        // A loop that was busy may have the request's bytes waiting to be read in this very
        // turn: decide on the next turn, after they are.
        if !overdue.contains(bev) {
            overdue.insert(bev)
            timer.schedule(after: 0)
            return
        }
        overdue.remove(bev)
        awaitingFirstRequest[bev] = nil
        let fd = bufferevent_getfd(bev)
        if fd >= 0 {
            slowRequestsDropped += 1
            shutdown(fd, Int32(SHUT_RDWR))
        }
        bufferevent_decref(bev)
    }

    fileprivate func handle(_ req: UnsafeMutablePointer<evhttp_request>) {
        loop.assertInEventLoop()
        guard let conn = evhttp_request_get_connection(req) else { return }
        if let bev = evhttp_connection_get_bufferevent(conn), let timer = awaitingFirstRequest.removeValue(forKey: bev) {
            timer.cancel()
            overdue.remove(bev)
            bufferevent_decref(bev)
        }
        if connections[conn] == nil {
            connections[conn] = ConnectionRecord()
            connectionsAccepted += 1
            // Accepted sockets lack TCP_NODELAY: the last small segment of any response larger
            // than one segment would wait for the client's delayed ACK (~40 ms), and every
            // small streamed event likewise. Set once per connection, at its first request.
            if let bev = evhttp_connection_get_bufferevent(conn) {
                var one: Int32 = 1
                setsockopt(bufferevent_getfd(bev), Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            }
            evhttp_connection_set_closecb(conn, closeCallback, Unmanaged.passUnretained(self).toOpaque())
        }
        handler(HTTPRequest(raw: req, server: self))
    }

    fileprivate func connectionClosed(_ conn: OpaquePointer) {
        loop.assertInEventLoop()
        guard let record = connections.removeValue(forKey: conn) else { return }
        record.stream?.clientClosed()
    }

    /// Called by a stream when it starts on `conn`: it hears of the client's departure.
    func attach(_ stream: HTTPResponseStream, to conn: OpaquePointer) {
        connections[conn]?.stream = stream
    }

    /// Called by a stream on its first write of a loop turn. All the events a stream gets in one
    /// turn (several upstreams answering at once) then go out as one HTTP chunk and one
    /// `writev`, instead of one chunk each: the flush runs once the turn's other callbacks have.
    func scheduleFlush(_ stream: HTTPResponseStream) {
        if needsFlush.isEmpty, let flushEvent { event_active(flushEvent, 0, 0) }
        needsFlush.append(WeakStream(stream: stream))
    }

    fileprivate func flushStreams() {
        let streams = needsFlush
        needsFlush.removeAll(keepingCapacity: true)
        for entry in streams { entry.stream?.flush() }
    }

    /// Called by a stream when it ends.
    func detach(_ stream: HTTPResponseStream, from conn: OpaquePointer) {
        if let record = connections[conn], record.stream === stream { record.stream = nil }
    }
}

/// What the server knows of one client connection.
final class ConnectionRecord {
    /// The streaming response currently using the connection, if any.
    weak var stream: HTTPResponseStream?
}

/// A stream waiting for its end-of-turn flush; weak, so that a pending flush never keeps a
/// stream (or, through it, the server) alive.
struct WeakStream {
    weak var stream: HTTPResponseStream?
}

/// libevent writes with `writev`, which raises SIGPIPE when the peer has gone: a server must
/// ignore it process-wide and see EPIPE on the socket instead. Done once, by the first server.
private let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

private let requestCallback: @convention(c) (UnsafeMutablePointer<evhttp_request>?, UnsafeMutableRawPointer?) -> Void = { req, arg in
    guard let req else { return }
    Unmanaged<HTTPServer>.fromOpaque(arg!).takeUnretainedValue().handle(req)
}

private let newConnectionCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> OpaquePointer? = { base, arg in
    guard let base else { return nil }
    return Unmanaged<HTTPServer>.fromOpaque(arg!).takeUnretainedValue().newConnection(base)
}

private let flushCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<HTTPServer>.fromOpaque(arg!).takeUnretainedValue().flushStreams()
}

private let closeCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { conn, arg in
    guard let conn else { return }
    Unmanaged<HTTPServer>.fromOpaque(arg!).takeUnretainedValue().connectionClosed(conn)
}
