import CEvent
import Glibc

/// One client connection's ``RequestHeadScanner``, fed from the connection's input buffer as
/// bytes arrive, before evhttp reads them, and the answer to a request that broke a limit.
///
/// It watches the buffer with an evbuffer callback, which libevent runs inside the socket read
/// that added the bytes and before evhttp's read callback. When a request breaks a limit, the
/// buffer is cut where that request starts, so evhttp never sees it (and never answers it with
/// its own page), while complete requests the client pipelined before it stay for evhttp to
/// answer; everything the client sends afterwards is discarded the same way. Once every request
/// before it has been answered, the answer (414, 431 or 413, the body the server's options
/// give) goes straight to the socket and the write side is shut, so the client reads it and sees
/// the end. The connection is then left to close: the client closes it, or the server's request
/// deadline does (``HTTPServer/rejected(_:)``).
final class RequestHeadGuard {
    private unowned let server: HTTPServer
    private let bev: OpaquePointer
    private var scanner: RequestHeadScanner
    private var entry: OpaquePointer?
    /// Bytes the client has sent (the scanner's offsets are in this stream).
    private var received = 0
    /// Requests evhttp has answered on the connection (its completion callback).
    private var completed = 0
    /// Requests evhttp has handed to the handler on the connection.
    private var dispatchedCount = 0
    /// The limit a request broke; set once.
    private(set) var rejected: HTTPRequestLimit?
    /// Requests before the rejected one, each answered before it is.
    private var answerAfter = 0
    private var answered = false
    /// The buffer is being cut: its own callbacks are ours.
    private var cutting = false
    /// Whether evhttp has handed a request of this connection to the handler (whose completion
    /// callback holds this guard's address: only the server's close callback may free it).
    private(set) var dispatchedAny = false

    init(server: HTTPServer, bev: OpaquePointer, limits: RequestHeadScanner.Limits) {
        self.server = server
        self.bev = bev
        self.scanner = RequestHeadScanner(limits: limits)
        entry = evbuffer_add_cb(bufferevent_get_input(bev), headGuardCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { detach() }

    /// Stops watching (before the buffer or this guard goes away).
    func detach() {
        guard let entry else { return }
        self.entry = nil
        evbuffer_remove_cb_entry(bufferevent_get_input(bev), entry)
    }

    /// evhttp hands `request` to the handler; the guard hears when evhttp has sent its answer.
    func dispatched(_ request: UnsafeMutablePointer<evhttp_request>) {
        dispatchedAny = true
        dispatchedCount += 1
        evhttp_request_set_on_complete_cb(request, requestCompleteCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Past its first request, and evhttp has answered every request it handed out: the
    /// connection waits for the client's next one.
    var isIdle: Bool { dispatchedAny && dispatchedCount == completed }

    /// Sends a FIN (the server is draining, the connection idle): the client closes its side
    /// and evhttp, reading the end, frees the connection. A request already on its way finds the
    /// connection closed without an answer, which clients retry on a new connection.
    func shutdownOutput() {
        let fd = bufferevent_getfd(bev)
        if fd >= 0 { shutdown(fd, Int32(SHUT_WR)) }
    }

    fileprivate func requestCompleted() {
        completed += 1
        if rejected != nil, !answered, completed >= answerAfter { answer() }
    }

    fileprivate func added(_ input: OpaquePointer, count: Int) {
        guard count > 0, !cutting else { return }
        received += count
        guard rejected == nil else {
            evbuffer_drain(input, evbuffer_get_length(input))
            return
        }
        let length = evbuffer_get_length(input)
        var start = evbuffer_ptr()
        guard count <= length, evbuffer_ptr_set(input, &start, length - count, EVBUFFER_PTR_SET) == 0 else { return }
        // The new bytes sit in a few chains; peeking at them copies nothing.
        let limit = withUnsafeTemporaryAllocation(of: iovec.self, capacity: 8) { vectors -> HTTPRequestLimit? in
            var scanned = 0
            while scanned < count {
                let n = Int(evbuffer_peek(input, count - scanned, &start, vectors.baseAddress, Int32(vectors.count)))
                guard n > 0 else { return nil }
                for vector in vectors.prefix(min(n, vectors.count)) {
                    let bytes = UnsafeRawBufferPointer(start: vector.iov_base, count: min(vector.iov_len, count - scanned))
                    scanned += bytes.count
                    if let limit = scanner.scan(bytes) { return limit }
                    if scanned == count { return nil }
                }
                guard evbuffer_ptr_set(input, &start, length - count + scanned, EVBUFFER_PTR_SET) == 0 else { return nil }
            }
            return nil
        }
        if let limit { reject(limit, input: input) }
    }

    private func reject(_ limit: HTTPRequestLimit, input: OpaquePointer) {
        rejected = limit
        answerAfter = scanner.requestsBefore
        // The buffer holds the stream's last `length` bytes: those before the rejected request
        // stay, the rest goes.
        let length = evbuffer_get_length(input)
        let keep = max(0, scanner.requestStart - (received - length))
        cutting = true
        if keep == 0 {
            evbuffer_drain(input, length)
        } else if let kept = evbuffer_new() {
            evbuffer_remove_buffer(input, kept, keep)
            evbuffer_drain(input, evbuffer_get_length(input))
            evbuffer_prepend_buffer(input, kept)
            evbuffer_free(kept)
        }
        cutting = false
        if completed >= answerAfter { answer() }
    }

    private func answer() {
        guard let limit = rejected else { return }
        answered = true
        let fd = bufferevent_getfd(bev)
        guard fd >= 0 else { return }
        let response = server.options.limitResponse(limit)
        var bytes = Array("HTTP/1.1 \(limit.status) \(reasonPhrase(limit.status))\r\n".utf8)
        bytes += Array("Content-Type: \(response.contentType)\r\nContent-Length: \(response.body.count)\r\n".utf8)
        bytes += Array("Connection: close\r\n\r\n".utf8)
        bytes += response.body
        // The connection's output is empty (every earlier answer is sent), and a few hundred bytes
        // fit any socket's send buffer: one send, without evhttp, which still believes it is
        // reading a request.
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        server.rejected(bev)
    }
}

private let headGuardCallback: @convention(c) (OpaquePointer?, UnsafePointer<evbuffer_cb_info>?, UnsafeMutableRawPointer?) -> Void = {
    buffer, info, arg in
    guard let buffer, let info, let arg else { return }
    Unmanaged<RequestHeadGuard>.fromOpaque(arg).takeUnretainedValue().added(buffer, count: info.pointee.n_added)
}

private let requestCompleteCallback: @convention(c) (UnsafeMutablePointer<evhttp_request>?, UnsafeMutableRawPointer?) -> Void = {
    _, arg in
    guard let arg else { return }
    Unmanaged<RequestHeadGuard>.fromOpaque(arg).takeUnretainedValue().requestCompleted()
}
