import CCurl
import Glibc

/// The sockets of a transfer's connections: opened by us, so that each new connection takes a
/// lease of the pool first, and closed through the ledger, which outlives every transfer.
extension Transfer {
    /// libcurl wants a socket for a new connection of this transfer.
    func openSocket(_ address: UnsafeMutablePointer<curl_sockaddr>) -> curl_socket_t {
        let fd = socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
        guard fd >= 0 else { return CCurl_SOCKET_BAD }
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        guard multi.socketOpened(fd, by: self) else {
            close(fd)
            leaseDenied = true
            return CCurl_SOCKET_BAD
        }
        fds.append(fd)
        return fd
    }
}

let openSocketCallback: curl_opensocket_callback = { clientp, _, address in
    guard let clientp, let address else { return CCurl_SOCKET_BAD }
    return Unmanaged<Transfer>.fromOpaque(clientp).takeUnretainedValue().openSocket(address)
}

let closeSocketCallback: curl_closesocket_callback = { clientp, fd in
    close(fd)
    if let clientp { Unmanaged<ConnectionLedger>.fromOpaque(clientp).takeUnretainedValue().closed(fd) }
    return 0
}
