import CEvent
import Glibc

/// An outgoing TCP connection on an ``EventLoop`` (a libevent bufferevent): connect, write,
/// hear bytes as they arrive, hear the end. For load generators and probes; the proxy's
/// upstream side uses libcurl instead.
public final class TCPConnection {
    /// Why a connection ended.
    public enum End: Sendable, Equatable {
        /// The peer closed it (EOF).
        case closed
        /// A socket error (errno), e.g. ECONNREFUSED or ECONNRESET.
        case error(Int32)
        /// ``close()`` was called.
        case local
    }

    private let loop: EventLoop
    private var bev: OpaquePointer?
    /// The connect has completed (libevent reported it).
    private var connected = false
    /// The errno of a failed ``write(_:)``, reported as the connection's end.
    private var writeError: Int32?

    public var onConnect: (() -> Void)?
    /// Bytes as they arrive; valid only during the call.
    public var onData: ((UnsafeRawBufferPointer) -> Void)?
    /// Called once, when the connection ends (not after ``close()``).
    public var onEnd: ((End) -> Void)?

    /// Starts connecting to `host` (an IPv4 literal) and `port`.
    public init(loop: EventLoop, host: String, port: UInt16) throws(EventError) {
        loop.preconditionInEventLoop()
        ignoreSIGPIPE
        self.loop = loop
        guard let bev = bufferevent_socket_new(loop.base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue)) else {
            throw EventError("bufferevent_socket_new")
        }
        self.bev = bev
        let me = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(bev, tcpRead, nil, tcpEvent, me)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bufferevent_socket_connect(bev, $0, Int32(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            bufferevent_free(bev)
            self.bev = nil
            throw EventError("connect \(host):\(port)")
        }
        bufferevent_enable(bev, CEvent_EV_READ)
    }

    deinit {
        if let bev { bufferevent_free(bev) }
    }

    /// Sends `bytes`, queueing what the socket does not take at once.
    ///
    /// On a connected socket with nothing queued they are sent in the call: queued, libevent
    /// would start watching the socket for writability (an `epoll_ctl`), write on the next loop
    /// turn and stop watching (another). A load generator sends a request per stream, so that
    /// was two system calls a stream besides the write. A socket error ends the connection with
    /// that error, reported from the loop (``onEnd`` is never called from inside this call); the
    /// error is not left for libevent to meet again, since a reset is reported only once (the
    /// next write would see EPIPE, a read EOF).
    public func write(_ bytes: [UInt8]) {
        loop.preconditionInEventLoop()
        guard let bev, writeError == nil else { return }
        var sent = 0
        if connected, let output = bufferevent_get_output(bev), evbuffer_get_length(output) == 0 {
            let fd = bufferevent_getfd(bev)
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n >= 0 {
                sent = n
            } else if errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR {
                writeError = errno
                bufferevent_trigger_event(bev, Int16(BEV_EVENT_ERROR | BEV_EVENT_WRITING), Int32(BEV_TRIG_DEFER_CALLBACKS.rawValue))
                return
            }
        }
        guard sent < bytes.count else { return }
        bytes.withUnsafeBytes { _ = bufferevent_write(bev, $0.baseAddress! + sent, $0.count - sent) }
    }

    /// Closes the connection now; ``onEnd`` is not called.
    public func close() {
        loop.preconditionInEventLoop()
        guard let bev else { return }
        self.bev = nil
        bufferevent_free(bev)
    }

    fileprivate func readable() {
        guard let bev, let input = bufferevent_get_input(bev) else { return }
        while evbuffer_get_length(input) > 0, self.bev != nil {
            var vec = iovec()
            guard evbuffer_peek(input, -1, nil, &vec, 1) > 0, let base = vec.iov_base else { break }
            let n = vec.iov_len
            onData?(UnsafeRawBufferPointer(start: base, count: n))
            guard self.bev != nil else { return }
            evbuffer_drain(input, n)
        }
    }

    fileprivate func event(_ what: Int16) {
        if what & Int16(BEV_EVENT_CONNECTED) != 0 {
            connected = true
            onConnect?()
            return
        }
        guard bev != nil else { return }
        let end: End = if let writeError { .error(writeError) } else if what & Int16(BEV_EVENT_EOF) != 0 { .closed } else { .error(errno) }
        if let bev { bufferevent_free(bev) }
        bev = nil
        let callback = onEnd
        onEnd = nil
        callback?(end)
    }
}

private let tcpRead: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { _, arg in
    Unmanaged<TCPConnection>.fromOpaque(arg!).takeUnretainedValue().readable()
}

private let tcpEvent: @convention(c) (OpaquePointer?, Int16, UnsafeMutableRawPointer?) -> Void = { _, what, arg in
    Unmanaged<TCPConnection>.fromOpaque(arg!).takeUnretainedValue().event(what)
}
