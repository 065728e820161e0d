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
    /// The largest request body, in bytes; larger gets 413.
    public var maxBodySize: Int = 64 * 1024
    /// The body of the answer to a request that broke one of the limits above, whatever its
    /// size (see ``RequestHeadScanner``); the connection is closed after it.
    public var limitResponse: @Sendable (HTTPRequestLimit) -> (contentType: String, body: [UInt8]) = { limit in
        ("text/plain; charset=utf-8", Array(reasonPhrase(limit.status).utf8))
    }
    /// `listen(2)` backlog.
    public var backlog: Int32 = 1024
    /// Bind with `SO_REUSEPORT`, so that several loops can each own a listener on one port and
    /// let the kernel spread connections across them.
    public var reusePort: Bool = true
    /// Claim the port for this process: listen alone first, so that binding fails with
    /// EADDRINUSE when another process serves the port (see ``HTTPServer/claim``), then allow
    /// SO_REUSEPORT for this process's other listeners. Set on the first of them only.
    public var claimPort: Bool = false
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
    let http: OpaquePointer
    var boundSocket: OpaquePointer?
    private let handler: (HTTPRequest) -> Void
    /// Connections that have sent at least one request, keyed by their `evhttp_connection`.
    var connections: [OpaquePointer: ConnectionRecord] = [:]
    /// New connections that have not completed a first request, keyed by their bufferevent
    /// (which we hold a reference to): each must do so within `requestHeaderTimeout`.
    var firstRequestDeadlines: FirstRequestDeadlines<OpaquePointer>
    /// Every open connection's size-limit guard, keyed by its bufferevent; from accept until
    /// evhttp closes the connection (or, for one that never sent a request, until its deadline
    /// gives up on it).
    var guards: [OpaquePointer: RequestHeadGuard] = [:]
    /// The connections (`evhttp_connection`) whose close callback is this server's, from the
    /// loop turn of their accept (``claimAccepted()``) until it runs.
    var closeWatched: Set<OpaquePointer> = []
    /// Bufferevents accepted in this loop turn, whose connections ``claimAccepted()`` takes
    /// the close callback of once evhttp has made them.
    var unclaimed: [OpaquePointer] = []
    /// Activated by the first accept of a turn; runs ``claimAccepted()``.
    var claimEvent: OpaquePointer?
    /// Fires when ``firstRequestDeadlines`` wants a check; armed for `deadlineTimerWake`.
    private var deadlineTimer: LoopTimer!
    private var deadlineTimerWake: FirstRequestDeadlines<OpaquePointer>.Wake?
    /// Streams written to in this loop turn, flushed together at its end (see ``scheduleFlush``).
    private var needsFlush: [WeakStream] = []
    /// Activated when the first stream of a turn needs a flush; runs after the turn's other
    /// callbacks.
    private var flushEvent: OpaquePointer?

    /// ``stopAccepting()`` was called.
    public internal(set) var isClosing = false
    /// Runs on the loop, after ``stopAccepting()``, whenever the server may have become quiet
    /// (``isQuiet``).
    public var onQuiet: (() -> Void)?
    /// Re-checks the accept queue before the listener closes.
    var listenerCheck: LoopTimer?

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
        self.firstRequestDeadlines = FirstRequestDeadlines(timeout: .seconds(options.requestHeaderTimeout))
        guard let http = evhttp_new(loop.base) else { throw EventError("evhttp_new") }
        self.http = http

        var tv = timeval(seconds: options.requestHeaderTimeout)
        evhttp_set_timeout_tv(http, &tv)
        // The guards answer every request beyond the limits before evhttp has read it; evhttp's
        // own limits, which it would answer with an HTML page, stay above theirs.
        evhttp_set_max_headers_size(http, 2 * max(options.maxHeadersSize, options.maxRequestLine))
        evhttp_set_max_body_size(http, 2 * options.maxBodySize)
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
        // Every stored property is set from here on, so a throw runs `deinit`, which frees
        // what was made (freeing it here as well would free it twice).
        flushEvent = event_new(loop.base, -1, 0, flushCallback, Unmanaged.passUnretained(self).toOpaque())
        claimEvent = makeClaimEvent()
        guard flushEvent != nil, claimEvent != nil else { throw EventError("event_new") }
        deadlineTimer = LoopTimer(loop: loop) { [unowned self] in self.checkFirstRequestDeadlines() }
        evhttp_set_gencb(http, requestCallback, Unmanaged.passUnretained(self).toOpaque())
        evhttp_set_bevcb(http, newConnectionCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        // Streams still open are cut; then no close callback may reach this object while
        // evhttp_free tears the connections down.
        for record in connections.values { record.stream?.serverClosing() }
        for conn in closeWatched { evhttp_connection_set_closecb(conn, nil, nil) }
        connections.removeAll()
        // evhttp_free drains the connections' input buffers: no guard may hear of it.
        for guardian in guards.values { guardian.detach() }
        guards.removeAll()
        if let flushEvent { event_free(flushEvent) }
        if let claimEvent { event_free(claimEvent) }
        for bev in firstRequestDeadlines.connections { bufferevent_decref(bev) }
        evhttp_free(http)
    }

    // MARK: - Callbacks from libevent

    /// evhttp accepted a connection and wants its bufferevent. It must complete its first
    /// request before its deadline (``FirstRequestDeadlines``). The extra reference and
    /// BEV_OPT_CLOSE_ON_FREE keep the socket ours until the deadline is settled, so it can never
    /// shut down a reused descriptor.
    fileprivate func newConnection(_ base: OpaquePointer) -> OpaquePointer? {
        guard let bev = bufferevent_socket_new(base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else { return nil }
        bufferevent_incref(bev)
        let now = ContinuousClock.now
        firstRequestDeadlines.accepted(bev, now: now)
        armDeadlineTimer(now: now)
        guards[bev] = RequestHeadGuard(server: self, bev: bev, limits: .init(
            maxRequestLine: options.maxRequestLine, maxHeadersSize: options.maxHeadersSize, maxBodySize: options.maxBodySize))
        if unclaimed.isEmpty, let claimEvent { event_active(claimEvent, 0, 0) }
        unclaimed.append(bev)
        return bev
    }

    /// A guard answered a request that broke a limit; nothing more is read from the
    /// connection. A client that keeps it open anyway is closed at the request deadline, which
    /// a connection past its first request takes on again here.
    func rejected(_ bev: OpaquePointer) {
        guard !firstRequestDeadlines.isAwaiting(bev) else { return }
        bufferevent_incref(bev)
        let now = ContinuousClock.now
        firstRequestDeadlines.accepted(bev, now: now)
        armDeadlineTimer(now: now)
    }

    /// The deadline timer fired: closes the connections the deadlines give up on.
    private func checkFirstRequestDeadlines() {
        deadlineTimerWake = nil
        let now = ContinuousClock.now
        for bev in firstRequestDeadlines.expire(now: now) {
            let fd = bufferevent_getfd(bev)
            if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
            // A connection evhttp has handed a request of is evhttp's to close, and its close
            // callback frees the guard (whose address its requests hold).
            if let guardian = guards[bev], !guardian.dispatchedAny {
                guards[bev] = nil
                guardian.detach()
            }
            bufferevent_decref(bev)
        }
        armDeadlineTimer(now: now)
        if isClosing { reportIfQuiet() }
    }

    /// Arms the one deadline timer for the deadlines' next check, unless it already is.
    private func armDeadlineTimer(now: ContinuousClock.Instant) {
        let wake = firstRequestDeadlines.nextWake
        guard wake != deadlineTimerWake else { return }
        deadlineTimerWake = wake
        switch wake {
        case nil: deadlineTimer.cancel()
        case .nextTurn: deadlineTimer.schedule(after: 0)
        case .at(let deadline): deadlineTimer.schedule(after: (deadline - now).seconds)
        }
    }

    fileprivate func handle(_ req: UnsafeMutablePointer<evhttp_request>) {
        loop.assertInEventLoop()
        guard let conn = evhttp_request_get_connection(req) else { return }
        if let bev = evhttp_connection_get_bufferevent(conn) {
            if firstRequestDeadlines.firstRequest(bev) { bufferevent_decref(bev) }
            guards[bev]?.dispatched(req)
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
            // claimAccepted() has done so in the turn of the accept; this is for a connection
            // it could not see (it takes the close callback only once).
            watchClose(of: conn)
        }
        // Draining: the client learns that this connection ends with this response.
        if isClosing { evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close") }
        handler(HTTPRequest(raw: req, server: self))
        if isClosing { reportIfQuiet() }
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

/// libevent writes with `writev`, which raises SIGPIPE when the peer has gone: a server (or an
/// outgoing ``TCPConnection``) must ignore it process-wide and see EPIPE on the socket instead.
/// Done once, by the first of them.
let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

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

