import Foundation

/// A tiny HTTP server on 127.0.0.1 (ephemeral port) whose responses a test writes byte by byte.
///
/// It exists to test the raw client itself: chunks split at awkward places, pauses between
/// flushes, close-delimited bodies, servers that stall. One thread, one connection at a time;
/// every socket has a 2 s timeout so a confused test cannot wedge it. Call `stop()` when done.
final class ScriptedHTTPServer: Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let exited = DispatchSemaphore(value: 0)

    /// Starts listening; `handler` runs for each connection after its request was read, and the
    /// connection is closed when it returns.
    init(handler: @escaping @Sendable (ScriptedConnection) -> Void) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError.socketError(call: "socket", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            let err = errno
            close(fd)
            throw RawHTTPError.socketError(call: "bind/listen", errno: err)
        }
        listenFD = fd
        port = UInt16(bigEndian: addr.sin_port)
        let exited = self.exited
        Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    break  // stop() shut the listener down
                }
                let connection = ScriptedConnection(fd: client)
                if connection.readRequest() { handler(connection) }
                connection.close()
            }
            exited.signal()
        }.start()
    }

    /// Stops accepting, waits for the server thread to finish its current connection and exit.
    func stop() {
        shutdown(listenFD, Int32(SHUT_RDWR))  // wakes the blocked accept()
        exited.wait()
        close(listenFD)
    }
}

/// The server side of one connection, for a `ScriptedHTTPServer` handler.
final class ScriptedConnection {
    private var fd: Int32
    /// Request line and headers, CRLFs included, without the final blank line.
    private(set) var requestHead = ""
    /// The request body (read when the request had a Content-Length).
    private(set) var requestBody: [UInt8] = []
    /// The request target, e.g. "/sse?x=1".
    var path: String {
        let parts = requestHead.split(separator: " ", maxSplits: 2)
        return parts.count > 1 ? String(parts[1]) : ""
    }

    init(fd: Int32) {
        self.fd = fd
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Writes bytes; false once the client is gone (EPIPE/ECONNRESET) or stuck.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// One chunk of a chunked body, written in a single send.
    @discardableResult
    func writeChunk(_ bytes: [UInt8]) -> Bool {
        write(Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + Array("\r\n".utf8))
    }

    @discardableResult
    func writeChunk(_ text: String) -> Bool { writeChunk(Array(text.utf8)) }

    /// Writes bytes, then ends the connection's sending side, with the socket corked so that
    /// the last data and the FIN leave in one segment (a reader sees both at once).
    func writeAndShutdown(_ bytes: [UInt8]) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_CORK, &one, socklen_t(MemoryLayout<Int32>.size))
        write(bytes)
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Sleeps, so the client sees the bytes so far as a separate arrival.
    func pause(milliseconds: Int) { usleep(useconds_t(milliseconds * 1000)) }

    /// Reads and discards until the client closes; false on the 2 s timeout.
    @discardableResult
    func waitForClientClose() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { continue }
            return n == 0 || errno == ECONNRESET
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Reads the request head and a Content-Length body; false if the client sent no request.
    fileprivate func readRequest() -> Bool {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let end = received.firstRange(of: separator) {
                requestHead = String(decoding: received[..<end.lowerBound], as: UTF8.self)
                requestBody = Array(received[end.upperBound...])
                break
            }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            received += buffer[0..<n]
        }
        let lengthLine = requestHead.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
        let length = lengthLine.flatMap { Int($0.dropFirst("content-length:".count).filter { $0 != " " }) } ?? 0
        while requestBody.count < length {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            requestBody += buffer[0..<n]
        }
        return true
    }
}
