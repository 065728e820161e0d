import CEvent
import Glibc

/// The listening socket: bound before evhttp takes it over.
extension HTTPServer {
    static func listen(loop: EventLoop, host: String, port: UInt16,
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

    static func boundPort(of fd: Int32) -> UInt16 {
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
}
