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

    /// Whether libcurl has sockets open (in use, idle or retired).
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

    /// Shuts down idle connections so that another multi can use their leases: for each host
    /// (or only `host`), at most `spare(host)` of its sockets not in `busy` (the spare count
    /// leaves alone the idle connections that admitted transfers are about to reuse).
    ///
    /// libcurl still holds the descriptor in its cache, so it is shut down rather than closed:
    /// the upstream sees the connection end now; libcurl finds it dead when it next looks (or
    /// retries a request it sent on it) and closes it through our callback.
    /// - Returns: how many were shut down.
    @discardableResult
    func retireIdle(host: Int?, spare: (Int) -> Int, busy: Set<curl_socket_t>) -> Int {
        var left: [Int: Int] = [:]
        var released = 0
        for (fd, s) in sockets where !s.retired && !busy.contains(fd) {
            if let host, s.host != host { continue }
            let allowed = left[s.host] ?? spare(s.host)
            guard allowed > 0 else { continue }
            left[s.host] = allowed - 1
            guard shutdown(fd, Int32(SHUT_RDWR)) == 0 else { continue }
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
