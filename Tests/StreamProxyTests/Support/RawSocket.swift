import Glibc

/// One blocking TCP connection to 127.0.0.1.
///
/// Deliberately plain POSIX (no URLSession, no libcurl) so the integration tests exercise the
/// server with a client that shares no code with it. Every blocking call takes a deadline that is
/// turned into `SO_RCVTIMEO` / `SO_SNDTIMEO` right before the call, so a misbehaving server makes
/// a test fail with a timeout instead of hanging the whole test run.
final class RawSocket {
    /// What one `receive` produced.
    enum Received {
        case bytes([UInt8])
        /// Orderly close (FIN) by the peer.
        case closed
        /// The peer reset the connection (RST).
        case reset
        case timedOut
    }

    /// The socket's file descriptor; -1 once closed.
    private(set) var fd: Int32

    /// Connects to 127.0.0.1:`port`. `receiveBufferSize` (SO_RCVBUF) is applied before
    /// `connect` so it also bounds the advertised TCP window: tests use it to make a client that
    /// stops reading fill up quickly.
    init(port: UInt16, receiveBufferSize: Int32? = nil, deadline: ContinuousClock.Instant) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError.socketError(call: "socket", errno: errno) }
        self.fd = fd
        if var size = receiveBufferSize {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        // On Linux SO_SNDTIMEO also bounds a blocking connect().
        guard applyTimeout(SO_SNDTIMEO, until: deadline) else {
            close()
            throw RawHTTPError.timedOut(received: [])
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if rc != 0 {
            let err = errno
            close()
            if err == EINPROGRESS || err == EAGAIN || err == EWOULDBLOCK {
                throw RawHTTPError.timedOut(received: [])
            }
            throw RawHTTPError.connectFailed(port: port, errno: err)
        }
    }

    deinit { close() }

    /// Writes all of `bytes`. Returns false if the peer closed or reset the connection first
    /// (callers still read: a server that rejects a request early has usually answered).
    @discardableResult
    func sendAll(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard applyTimeout(SO_SNDTIMEO, until: deadline) else {
                throw RawHTTPError.timedOut(received: [])
            }
            let n = bytes.withUnsafeBytes { buf in
                // MSG_NOSIGNAL: a closed peer must give EPIPE, not kill the test process.
                Glibc.send(fd, buf.baseAddress! + offset, buf.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                offset += n
                continue
            }
            let err = errno
            if err == EINTR { continue }
            if err == EAGAIN || err == EWOULDBLOCK { throw RawHTTPError.timedOut(received: []) }
            if err == EPIPE || err == ECONNRESET { return false }
            throw RawHTTPError.socketError(call: "send", errno: err)
        }
        return true
    }

    /// Waits (until `deadline`) for some bytes, at most `maxCount`.
    func receive(maxCount: Int = 65536, deadline: ContinuousClock.Instant) throws -> Received {
        while true {
            guard applyTimeout(SO_RCVTIMEO, until: deadline) else { return .timedOut }
            var buffer = [UInt8](repeating: 0, count: maxCount)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { return .bytes(Array(buffer[0..<n])) }
            if n == 0 { return .closed }
            let err = errno
            switch err {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .timedOut
            case ECONNRESET: return .reset
            default: throw RawHTTPError.socketError(call: "recv", errno: err)
            }
        }
    }

    /// Closes the socket. With `reset`, SO_LINGER 0 makes the kernel send RST instead of FIN,
    /// the most abrupt way a client can vanish.
    func close(reset: Bool = false) {
        guard fd >= 0 else { return }
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        _ = Glibc.close(fd)
        fd = -1
    }

    /// Sets a socket timeout to the time left until `deadline`; false if it has already passed.
    private func applyTimeout(_ option: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        let remaining = deadline - .now
        guard remaining > .zero else { return false }
        let parts = remaining.components
        let micros = Int(parts.attoseconds / 1_000_000_000_000)
        // An all-zero timeval would mean "block forever": round up to at least 1 µs.
        var tv = timeval(tv_sec: Int(parts.seconds), tv_usec: parts.seconds == 0 ? max(1, micros) : micros)
        return setsockopt(fd, SOL_SOCKET, option, &tv, socklen_t(MemoryLayout<timeval>.size)) == 0
    }
}
