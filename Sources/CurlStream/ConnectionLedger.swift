import CCurl
import Glibc

/// The sockets libcurl opened through our CURLOPT_OPENSOCKETFUNCTION, each matched with the
/// lease it holds, and which of them are in use.
///
/// libcurl reports most closes through CURLOPT_CLOSESOCKETFUNCTION, but 7.88 closes a socket
/// that never became a connection's socket (a connect attempt cut short, or lost to another
/// address) with a plain `close` (lib/cf-socket.c, `cf_socket_close` of an inactive socket). All
/// such sockets belong to one transfer's connect, so when a transfer leaves the multi handle the
/// ledger checks the sockets it opened: one that is closed, or whose descriptor number now names
/// another socket (its inode differs), has its lease returned then. Every lease returns exactly
/// once: through the close callback, this check, or ``giveUp(host:isWatched:)``.
///
/// The close callback can come from `curl_multi_cleanup`, after the multi is gone: the ledger is
/// a separate object for that reason, and reports through `onGone`, which its owner clears first.
final class ConnectionLedger {
    private struct Socket {
        let host: Int
        let inode: UInt
        /// The transfer whose connect opened it: the only one that can see it closed unreported.
        let openedBy: TransferID
        /// The transfers using the socket (several on a multiplexed HTTP/2 connection); none
        /// while it idles in libcurl's cache.
        var users: [TransferID]
        /// Shut down by us; its lease already returned, libcurl closes it when it notices.
        var givenUp = false
    }

    private var sockets: [curl_socket_t: Socket] = [:]
    /// Sockets that no transfer uses, per local host id (idle, or given up).
    private var unused: [Set<curl_socket_t>] = []
    /// A socket's lease returns (with its local host id).
    var onGone: ((Int) -> Void)?

    /// Whether libcurl has sockets open (in use or idle).
    var hasSockets: Bool { !sockets.isEmpty }

    /// libcurl opened `fd` to `host` for transfer `id`.
    func opened(_ fd: curl_socket_t, host: Int, by id: TransferID) {
        // The descriptor number is ours again: libcurl closed the socket it had without telling us.
        if let stale = sockets.removeValue(forKey: fd) { forget(fd, stale) }
        sockets[fd] = Socket(host: host, inode: Self.inode(of: fd), openedBy: id, users: [id])
    }

    /// libcurl closed `fd` (close callback).
    func closed(_ fd: curl_socket_t) {
        guard let s = sockets.removeValue(forKey: fd) else { return }
        forget(fd, s)
    }

    /// libcurl watches `fd` for transfer `id` (socket callback): the socket is in use. Returns
    /// whether `id` is a new user of it.
    func using(_ fd: curl_socket_t, by id: TransferID) -> Bool {
        guard var s = sockets[fd], !s.users.contains(id) else { return false }
        if s.users.isEmpty { unused[s.host].remove(fd) }
        s.users.append(id)
        sockets[fd] = s
        return true
    }

    /// Transfer `id` left the multi handle. The sockets it used are idle now unless libcurl
    /// closed them or other transfers still use them; `fds` are those it opened or was seen using. Only a socket it opened is
    /// checked with `fstat` (a reused one was a connection's socket, whose close is reported).
    func released(by id: TransferID, fds: [curl_socket_t]) {
        for fd in fds {
            guard var s = sockets[fd] else { continue }
            if s.openedBy == id && s.inode != Self.inode(of: fd) {
                sockets[fd] = nil
                forget(fd, s)
            } else if let i = s.users.firstIndex(of: id) {
                s.users.remove(at: i)
                sockets[fd] = s
                guard s.users.isEmpty else { continue }
                grow(s.host)
                unused[s.host].insert(fd)
            }
        }
    }

    /// Shuts down one idle socket to `host` that libcurl is not watching. libcurl finds it dead
    /// at its next look (a liveness poll before reuse, or its once-a-second prune) and closes it;
    /// the lease is returned now, so the caller counts it as gone. False if there is none.
    func giveUp(host: Int, isWatched: (curl_socket_t) -> Bool) -> Bool {
        guard host < unused.count else { return false }
        for fd in unused[host] {
            guard var s = sockets[fd], !s.givenUp, !isWatched(fd) else { continue }
            unused[host].remove(fd)
            s.givenUp = true
            sockets[fd] = s
            shutdown(fd, Int32(SHUT_RDWR))
            return true
        }
        return false
    }

    private func forget(_ fd: curl_socket_t, _ s: Socket) {
        if s.host < unused.count { unused[s.host].remove(fd) }
        if !s.givenUp { onGone?(s.host) }
    }

    private func grow(_ host: Int) {
        while unused.count <= host { unused.append([]) }
    }

    /// The inode of the socket behind `fd`, 0 when `fd` is not open.
    private static func inode(of fd: curl_socket_t) -> UInt {
        var st = stat()
        return fstat(fd, &st) == 0 ? UInt(st.st_ino) : 0
    }
}
