import CCurl
import Glibc

/// One multi's side of the ``ConnectionBudget``: the leases it holds, per host and per socket.
///
/// libcurl opens and closes connections through our CURLOPT_OPENSOCKETFUNCTION and
/// CURLOPT_CLOSESOCKETFUNCTION, so every socket is matched with a lease. The close callback
/// can come from `curl_multi_cleanup`, after the multi is gone: the ledger is a separate object
/// that outlives the multi handle for that reason.
final class ConnectionLedger {
    let budget: ConnectionBudget
    let member: BudgetMember
    /// Leases per local host id: sockets open plus reservations not yet turned into sockets.
    private(set) var leases: [Int] = []
    private var hostLeases: [HostLeases] = []
    private var hostIDs: [String: Int] = [:]
    /// Sockets libcurl opened; a retired one was shut down as idle and its lease already returned.
    private var sockets: [curl_socket_t: (host: Int, retired: Bool)] = [:]

    init(budget: ConnectionBudget, member: BudgetMember) {
        self.budget = budget
        self.member = member
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

    func leases(of host: Int) -> HostLeases { hostLeases[host] }

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
        if !reserved && !reserve(host) { return false }
        sockets[fd] = (host, false)
        return true
    }

    /// libcurl closed `fd`.
    func closed(_ fd: curl_socket_t) {
        guard let s = sockets.removeValue(forKey: fd), !s.retired else { return }
        leases[s.host] -= 1
        budget.release(hostLeases[s.host])
    }

    /// Shuts down idle connections (to `host`, or to any host when nil) so that another multi
    /// can use their leases. libcurl finds them dead when it next looks and closes them.
    /// - Returns: how many were released.
    @discardableResult
    func retireIdle(host: String?, busy: Set<curl_socket_t>) -> Int {
        var released = 0
        for (fd, s) in sockets where !s.retired && !busy.contains(fd) {
            if let host, hostLeases[s.host].key != host { continue }
            shutdown(fd, Int32(SHUT_RDWR))
            sockets[fd] = (s.host, true)
            leases[s.host] -= 1
            budget.release(hostLeases[s.host])
            released += 1
        }
        return released
    }

    /// Returns every lease still held; after `curl_multi_cleanup`, which closes (and reports)
    /// every connection, this finds nothing unless libcurl kept a socket from us.
    func releaseAll() {
        for (fd, s) in sockets where !s.retired {
            budget.release(hostLeases[s.host])
            sockets[fd] = (s.host, true)
        }
        budget.leave(member)
    }
}
