import CEvent
import Glibc

/// One client connection's ``RequestHeadScanner``, fed from the connection's input buffer as
/// bytes arrive, before evhttp reads them, and the answer to a request that broke a limit.
///
/// It watches the buffer with an evbuffer callback, which libevent runs inside the socket read
/// that added the bytes and before evhttp's read callback. When a request breaks a limit, the
/// buffer is emptied there, so evhttp never sees the rest of that request (and never answers it
/// with its own page); everything the client sends afterwards is discarded the same way. The
/// answer (414, 431 or 413, the body the server's options give) goes straight to the socket,
/// then the write side is shut, so the client reads it and sees the end. If a response is still
/// being sent on the connection (the client pipelined), the answer waits for it to complete.
/// The connection is then left to close: the client closes it, or the server's request deadline
/// does (``HTTPServer/rejected(_:)``).
final class RequestHeadGuard {
    private unowned let server: HTTPServer
    private let bev: OpaquePointer
    private var scanner: RequestHeadScanner
    private var entry: OpaquePointer?
    /// A request is being answered on the connection (from the handler to evhttp's completion).
    private var busy = false
    /// The limit a request broke; set once.
    private(set) var rejected: HTTPRequestLimit?
    private var answered = false

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

    /// evhttp hands `request` to the handler: the connection is busy until it completes.
    func dispatched(_ request: UnsafeMutablePointer<evhttp_request>) {
        busy = true
        evhttp_request_set_on_complete_cb(request, requestCompleteCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    fileprivate func completed() {
        busy = false
        if rejected != nil, !answered { answer() }
    }

    fileprivate func added(_ input: OpaquePointer, count: Int) {
        guard count > 0 else { return }
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
        evbuffer_drain(input, evbuffer_get_length(input))
        server.rejected(bev)
        if !busy { answer() }
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
        // The connection's output is empty (no response is under way), and a few hundred bytes
        // fit any socket's send buffer: one send, without evhttp, which still believes it is
        // reading a request.
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
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
    Unmanaged<RequestHeadGuard>.fromOpaque(arg).takeUnretainedValue().completed()
}
