import CCurl
import EventLoop

/// How a multi shares the process-wide ``ConnectionBudget`` with the others: publishing which
/// hosts it waits on, answering requests to close idle connections, and waking when a lease
/// comes back.
extension CurlMulti {
    /// Publishes which hosts this multi waits on for a lease. Hosts newly starved make the other
    /// multis close their idle connections to them (once; after that, a multi closes rather
    /// than keeps a connection to a host someone waits for).
    func noteStarvation(_ now: Set<Int>) {
        guard now != starvedHosts else { return }
        // Waiting is published first, so that a lease released in answer wakes this multi.
        budget.setWaiting(ledger.member, !now.isEmpty)
        let newlyStarved = now.subtracting(starvedHosts)
        for h in starvedHosts.subtracting(now) {
            ledger.leases(of: h).starvedMembers.subtract(1, ordering: .relaxed)
        }
        starvedHosts = now
        for h in newlyStarved {
            let leases = ledger.leases(of: h)
            leases.starvedMembers.add(1, ordering: .relaxed)
            budget.requestIdleRelease(for: leases, from: ledger.member)
        }
        if now.isEmpty {
            starvationTimer.cancel()
        } else if !starvationTimer.isScheduled {
            starvationTimer.schedule(after: 0.05)
        }
    }

    /// While starved, asks again every 50 ms: a connection that went idle elsewhere after the
    /// first request (and whose multi had its own queue then) is released on the next ask.
    func starvationTick() {
        guard !starvedHosts.isEmpty else { return }
        for h in starvedHosts { budget.requestIdleRelease(for: ledger.leases(of: h), from: ledger.member) }
        settle()
        if !starvedHosts.isEmpty { starvationTimer.schedule(after: 0.05) }
    }

    /// Another multi returned a lease or wants idle connections closed.
    func budgetWoke() {
        let request = ledger.member.takeRequests()
        if request.any || !request.hosts.isEmpty {
            let busy = busySockets()
            if request.any {
                ledger.retireIdle(host: nil, spare: spareConnections, busy: busy)
            } else {
                for key in request.hosts {
                    ledger.retireIdle(host: ledger.host(key), spare: spareConnections, busy: busy)
                }
            }
        }
        settle()
    }

    /// Idle connections to `host` no admitted transfer is about to reuse.
    func spareConnections(_ host: Int) -> Int {
        ledger.leases[host] - admission.active(host)
    }

    /// Sockets in use by this multi's active transfers (connecting or transferring).
    func busySockets() -> Set<curl_socket_t> {
        var busy = Set<curl_socket_t>()
        for t in transfers.values where t.isActive {
            if let fd = t.openedSocket { busy.insert(fd) }
            if let easy = t.easy {
                var fd: curl_socket_t = -1
                if CCurl_easy_getinfo_socket(easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK && fd >= 0 { busy.insert(fd) }
            }
        }
        return busy
    }
}
