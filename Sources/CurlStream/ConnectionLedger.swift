import CCurl
import Glibc

/// A multi's side of its ``ConnectionBudget``: the leases it holds, per host and per socket.
///
/// libcurl opens and closes connections through our CURLOPT_OPENSOCKETFUNCTION and
/// CURLOPT_CLOSESOCKETFUNCTION, so every socket is matched with a lease. The close callback
/// can come from `curl_multi_cleanup`, after the multi is gone: the ledger is a separate object
/// that outlives the multi handle for that reason.
final class ConnectionLedger {
    let budget: ConnectionBudget
    /// Leases per local host id: sockets open plus reservations not yet turned into sockets.
    private(set) var leases: [Int] = []
    private var hostLeases: [HostLeases] = []
    private var hostIDs: [String: Int] = [:]
    /// Sockets libcurl opened: the host each holds a lease for, and the socket's inode (to tell
    /// it from a later socket given the same descriptor number).
    private var sockets: [curl_socket_t: (host: Int, inode: UInt)] = [:]

    init(budget: ConnectionBudget) {
        self.budget = budget
    }

    /// The local id of `hostKey`.
    func host(_ hostKey: String) -> Int {
        if let id = hostIDs[hostKey] { return id }
        let id = hostLeases.count
        hostIDs[hostKey] = id
        hostLeases.append(budget.host(hostKey))
        leases.append(0)
        return id
    }

    /// Whether libcurl has sockets open (in use or idle).
    var hasSockets: Bool { !sockets.isEmpty }

    /// Takes a lease for a connection to `host`.
    func reserve(_ host: Int) -> Bool {
        guard budget.tryAcquire(hostLeases[host]) else { return false }
        leases[host] += 1
        return true
    }

    /// Returns a lease that never became a socket.
    func unreserve(_ host: Int) {
        leases[host] -= 1
        budget.release(hostLeases[host])
    }

    /// libcurl opened `fd` for `host`, under a reservation or (when it found no idle connection
    /// we expected it to reuse) under a lease taken now. False: no lease, do not connect.
    func opened(_ fd: curl_socket_t, host: Int, reserved: Bool) -> Bool {
        // The descriptor number is ours again: libcurl closed the socket it had without our
        // close callback (7.88 does so for some aborted transfers).
        if let stale = sockets.removeValue(forKey: fd) { forget(stale.host) }
        if !reserved && !reserve(host) {
            reapClosedSockets()
            if !reserve(host) { return false }
        }
        sockets[fd] = (host, Self.inode(of: fd))
        return true
    }

    /// libcurl closed `fd`.
    func closed(_ fd: curl_socket_t) {
        guard let s = sockets.removeValue(forKey: fd) else { return }
        forget(s.host)
    }

    /// Releases the leases of sockets that libcurl closed without telling us (the descriptor is
    /// closed, or now belongs to another socket).
    func reapClosedSockets() {
        for (fd, s) in sockets where Self.inode(of: fd) != s.inode {
            sockets[fd] = nil
            forget(s.host)
        }
    }

    private func forget(_ host: Int) {
        leases[host] -= 1
        budget.release(hostLeases[host])
    }

    /// Returns every lease still held; after `curl_multi_cleanup`, which closes (and reports)
    /// every connection, this finds nothing unless libcurl kept a socket from us.
    func releaseAll() {
        for (_, s) in sockets { budget.release(hostLeases[s.host]) }
        sockets.removeAll()
    }

    /// The inode of the socket behind `fd`, 0 when `fd` is not open.
    private static func inode(of fd: curl_socket_t) -> UInt {
        var st = stat()
        return fstat(fd, &st) == 0 ? UInt(st.st_ino) : 0
    }
}
