import EventLoop
import Foundation
import Glibc
import Testing

/// The load generator's outgoing connection (``TCPConnection``): how a write that meets a reset
/// connection ends it. The loop is this test's own, run on the test's thread.
@Suite(.serialized)
struct TCPConnectionTests {
    /// A listening socket on 127.0.0.1 and its port.
    private func listener() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        try #require(bound)
        return (fd, UInt16(bigEndian: addr.sin_port))
    }

    /// The server resets the connection (SO_LINGER 0) just before the client writes its
    /// request: the connection ends with ECONNRESET, from the loop, not from inside `write`.
    /// Left to libevent, the bytes would have been written again and met EPIPE instead (a reset
    /// is reported once), raising SIGPIPE where nothing ignores it.
    @Test func aWriteThatMeetsAResetEndsTheConnectionWithIt() throws {
        let (server, port) = try listener()
        defer { close(server) }
        let loop = try EventLoop()
        let connection = try TCPConnection(loop: loop, host: "127.0.0.1", port: port)
        var ends: [TCPConnection.End] = []
        var inWrite = false
        var endedInWrite = false
        connection.onEnd = { end in
            ends.append(end)
            endedInWrite = endedInWrite || inWrite
            loop.stop()
        }
        connection.onConnect = { [unowned connection] in
            // The handshake is done, so the connection waits in the backlog: accept returns at once.
            let accepted = accept(server, nil, nil)
            var reset = linger(l_onoff: 1, l_linger: 0)
            setsockopt(accepted, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
            close(accepted)
            inWrite = true
            connection.write(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            inWrite = false
        }
        let timeout = LoopTimer(loop: loop) { loop.stop() }
        timeout.schedule(after: 5)
        loop.run()
        connection.onEnd = nil
        connection.onConnect = nil
        #expect(ends == [.error(ECONNRESET)])
        #expect(!endedInWrite, "onEnd ran inside write")
    }
}
