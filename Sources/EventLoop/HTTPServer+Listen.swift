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
        if options.claimPort {
            return try claim(loop: loop, storage: &storage, length: length, flags: flags, options: options,
                             address: "\(host):\(port)")
        }
        if options.reusePort { flags |= UInt32(LEV_OPT_REUSEABLE_PORT) }
        let listener = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                evconnlistener_new_bind(loop.base, nil, nil, flags, options.backlog, $0, Int32(length))
            }
        }
        guard let listener else { throw EventError("bind \(host):\(port)") }
        return listener
    }

    /// Binds and listens *without* SO_REUSEPORT, so that the kernel refuses (EADDRINUSE) if any
    /// socket of any process already listens on the port, reuse-port or not; only then turns
    /// SO_REUSEPORT on, so that this process's other listeners (bound with it) can join.
    ///
    /// The check is the kernel's own, under its port lock: of two processes claiming one port at
    /// once, the second `listen` sees the first listening and fails. A claim that fails never
    /// listened, so it never took a connection meant for the process that holds the port. (A
    /// test bind followed by a reuse-port bind would leave a window between the two in which
    /// two processes both pass.)
    private static func claim(loop: EventLoop, storage: inout sockaddr_storage, length: socklen_t, flags: UInt32,
                              options: HTTPServerOptions, address: String) throws(EventError) -> OpaquePointer {
        let fd = socket(Int32(storage.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
                        | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EventError("socket") }
        var one: Int32 = 1
        let size = socklen_t(MemoryLayout<Int32>.size)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0 && bind(fd, addr, length) == 0
                    && Glibc.listen(fd, options.backlog) == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) == 0
            }
        }
        guard bound else {
            let error = EventError("bind \(address)")
            close(fd)
            throw error
        }
        // Backlog 0: the socket listens already.
        guard let listener = evconnlistener_new(loop.base, nil, nil, flags, 0, fd) else {
            let error = EventError("evconnlistener_new")
            close(fd)
            throw error
        }
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
