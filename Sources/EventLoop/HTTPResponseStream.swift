import CEvent
import Glibc

/// The body of a response sent piece by piece, with backpressure and close detection.
///
/// Created by ``HTTPRequest/startStream(status:headers:)``, which has already sent the status
/// line and headers. The owner writes with ``write(_:)``, watches ``queuedBytes``, hears
/// ``onDrain`` when everything queued has reached the socket and ``onClose`` when the client
/// went away, and calls ``end()`` exactly once (or lets the stream go, which ends it). An owner
/// that must know when the ended body has left (a shutdown) sets ``onFlushed``.
///
/// libevent facts this type hides (TCP_NODELAY, which accepted sockets lack, is set by the server
/// on every connection): evhttp's connection timeout is a read timeout that
/// would cut a client that legitimately sends nothing; after a client disconnects mid-reply the
/// request is detached and must still be ended to be freed.
public final class HTTPResponseStream {
    private let server: HTTPServer
    private var request: UnsafeMutablePointer<evhttp_request>?
    private let connection: OpaquePointer
    private let output: OpaquePointer
    /// Bytes written in this loop turn, not yet handed to evhttp.
    private let pending: OpaquePointer
    private var flushScheduled = false
    /// Our callback on the connection's output buffer while an ended body is still queued
    /// (only with ``onFlushed`` set). The stream stays attached to its connection meanwhile, so
    /// that it hears of the connection's end before the buffer is freed.
    private var flushWatch: OpaquePointer?

    /// Called once, on the loop, when the client closes the connection before ``end()``. The
    /// stream is already closed then: writes are dropped.
    public var onClose: (() -> Void)?
    /// Called on the loop each time the queued output has been fully handed to the socket.
    public var onDrain: (() -> Void)?
    /// Called once, on the loop, when the stream is over and none of its bytes wait in this
    /// process any more: after ``end()`` once the last byte has been handed to the socket, or
    /// when the connection is gone (its queued bytes discarded). Not called when the server is
    /// torn down.
    public var onFlushed: (() -> Void)?

    init(request: UnsafeMutablePointer<evhttp_request>, server: HTTPServer, status: Int) {
        self.server = server
        self.request = request
        let conn = evhttp_request_get_connection(request)!
        let bev = evhttp_connection_get_bufferevent(conn)!
        self.connection = conn
        self.output = bufferevent_get_output(bev)
        self.pending = evbuffer_new()

        evhttp_send_reply_start(request, Int32(status), reasonPhrase(status))

        // No read timeout while streaming; a write timeout still cuts a client that stopped
        // reading altogether. evhttp restores its own timeouts when the response is done.
        var writeTimeout = timeval(seconds: server.options.streamWriteTimeout)
        bufferevent_set_timeouts(bev, nil, &writeTimeout)
        server.attach(self, to: conn)
    }

    deinit {
        // Nobody is left to hear of the flush.
        onFlushed = nil
        stopWatchingFlush()
        endBody()
        evbuffer_free(pending)
    }

    /// Bytes queued for the client and not yet accepted by its socket (including those written
    /// in this loop turn and not yet flushed).
    public var queuedBytes: Int {
        server.loop.preconditionInEventLoop()
        return request == nil ? 0 : evbuffer_get_length(output) + evbuffer_get_length(pending)
    }

    /// Queues `bytes` for the client. Dropped once the stream is closed.
    ///
    /// Bytes written in one loop turn are sent together at the turn's end, as one HTTP chunk.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        server.loop.preconditionInEventLoop()
        guard request != nil, bytes.count > 0 else { return }
        evbuffer_add(pending, bytes.baseAddress, bytes.count)
        if !flushScheduled {
            flushScheduled = true
            server.scheduleFlush(self)
        }
    }

    /// Hands what this turn wrote to evhttp as one chunk.
    func flush() {
        flushScheduled = false
        guard let request, evbuffer_get_length(pending) > 0 else { return }
        evhttp_send_reply_chunk_with_cb(request, pending, drainCallback, Unmanaged.passUnretained(self).toOpaque())
        // evhttp takes nothing for a response that has no body (HEAD, 204, 304) or a request
        // already off its connection: such bytes are dropped, not kept.
        let left = evbuffer_get_length(pending)
        if left > 0 { evbuffer_drain(pending, left) }
    }

    /// Queues `bytes` for the client.
    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Queues `bytes` for the client.
    public func write(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Ends the body (the final chunk for HTTP/1.1, a close for HTTP/1.0). Idempotent.
    public func end() {
        server.loop.preconditionInEventLoop()
        endBody()
    }

    private func endBody() {
        guard let request else { return }
        flush()
        self.request = nil
        guard onFlushed != nil else {
            server.detach(self, from: connection)
            evhttp_send_reply_end(request)
            return
        }
        // Watch the output buffer before evhttp adds the final chunk; if it frees the connection
        // at once (a close-delimited body), `clientClosed` reports the flush.
        flushWatch = evbuffer_add_cb(output, flushWatchCallback, Unmanaged.passUnretained(self).toOpaque())
        evhttp_send_reply_end(request)
        if flushWatch != nil, evbuffer_get_length(output) == 0 { flushed() }
    }

    /// Has evhttp close the connection once this response has been sent (the server is
    /// draining). Its headers went out already; the close is what tells the client.
    func closeConnectionAfterward() {
        guard let request else { return }
        evhttp_add_header(evhttp_request_get_output_headers(request), "Connection", "close")
    }

    /// Closes the connection at once with a TCP reset, discarding anything still queued. For
    /// test origins that simulate a server dying mid-body.
    public func resetConnection() {
        server.loop.preconditionInEventLoop()
        guard request != nil else { return }
        request = nil
        server.detach(self, from: connection)
        let fd = bufferevent_getfd(evhttp_connection_get_bufferevent(connection))
        var lingerZero = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lingerZero, socklen_t(MemoryLayout<linger>.size))
        // Frees the request too: it is still attached to the connection.
        evhttp_connection_free(connection)
    }

    // MARK: - From the server and libevent

    /// The client closed the connection. libevent has detached the request; ending it frees it.
    /// After ``end()``, while the body was still queued: the bytes are gone, so is the wait.
    func clientClosed() {
        guard let request else {
            if flushWatch != nil { flushed() }
            return
        }
        self.request = nil
        if evhttp_request_get_connection(request) == nil {
            evhttp_send_reply_end(request)
        }
        let callback = onClose
        onClose = nil
        onDrain = nil
        callback?()
        finishFlushed()
    }

    /// The server is being torn down; evhttp frees the request with its connection.
    func serverClosing() {
        stopWatchingFlush()
        request = nil
        onClose = nil
        onDrain = nil
        onFlushed = nil
    }

    /// The ended body has left the output buffer (or the connection is gone).
    fileprivate func flushed() {
        stopWatchingFlush()
        server.detach(self, from: connection)
        finishFlushed()
    }

    private func stopWatchingFlush() {
        guard let watch = flushWatch else { return }
        flushWatch = nil
        evbuffer_remove_cb_entry(output, watch)
    }

    private func finishFlushed() {
        let callback = onFlushed
        onFlushed = nil
        callback?()
    }

    fileprivate func drained() {
        // With bytes still pending, the drain that matters comes after their flush.
        guard request != nil, evbuffer_get_length(pending) == 0 else { return }
        onDrain?()
    }
}

private let flushWatchCallback: @convention(c) (OpaquePointer?, UnsafePointer<evbuffer_cb_info>?, UnsafeMutableRawPointer?) -> Void = { buffer, _, arg in
    guard evbuffer_get_length(buffer) == 0 else { return }
    Unmanaged<HTTPResponseStream>.fromOpaque(arg!).takeUnretainedValue().flushed()
}

private let drainCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { _, arg in
    Unmanaged<HTTPResponseStream>.fromOpaque(arg!).takeUnretainedValue().drained()
}
