/// The probe of an HTTPS host whose protocol is not known yet (``PoolStateMachine/probesProtocol``).
///
/// Its transfers set CURLOPT_PIPEWAIT: until the host's first connection has told libcurl whether
/// it multiplexes, libcurl holds every other transfer back for it; then it puts them on that
/// connection up to its stream limit and opens connections for the rest (lib/url.c
/// ConnectionExists). Had the pool admitted each with a lease, as for HTTP/1.1, a first burst
/// beyond one connection's streams would open a connection for every lease holder beyond a full
/// connection, up to maxConnectionsPerHost. So the oldest waiter runs alone, with a lease (or on
/// an idle connection), and the others wait in the queue, blocked on no limit (though one may
/// take an idle connection: that needs no lease), until its response head tells the pool:
/// HTTP/2, and they take the free streams and then one new connection at a time; HTTP/1.x, and
/// they take leases as for any HTTP/1.1 host. A probe that ends before its
/// head (an error, a cut, a redirect, a refused socket) hands the role at once to the oldest
/// waiter; waits still end at poolTimeout. Plain-HTTP hosts, and every host with upstreamHTTP
/// 1.1, set no PIPEWAIT and are never probed.
extension PoolStateMachine {
    /// Whether `h`'s waiters wait for its probe's response rather than for a connection.
    func waitsForProbe(_ h: Int) -> Bool { hosts[h].probe != nil && !hosts[h].holdReleased }

    /// How long waiters are held for a probe's head: a slow first response must not make them
    /// fail at poolTimeout. Past it they take leases (and may open a connection more than an
    /// HTTP/2 host needs, as without the probe); the protocol is still learnt from the head.
    var probeHold: Duration { min(.seconds(1), poolTimeout / 2) }

    /// Releases the waiters of every host whose probe has run past ``probeHold`` without a head.
    mutating func releaseSlowProbes(now: Instant, _ actions: inout [PoolAction]) {
        for h in hosts.indices where hosts[h].awaitsProtocol {
            guard !hosts[h].holdReleased, let until = hosts[h].holdUntil, until <= now else { continue }
            hosts[h].holdReleased = true
            if hosts[h].waiting > 0 { admit(h, &actions) }
        }
    }

    /// The end of the earliest hold still running.
    var nextHoldEnd: Instant? {
        var earliest: Instant?
        for h in hosts.indices where hosts[h].awaitsProtocol && !hosts[h].holdReleased && hosts[h].waiting > 0 {
            guard hosts[h].probe != nil, let until = hosts[h].holdUntil else { continue }
            earliest = min(until, earliest ?? until)
        }
        return earliest
    }

    /// Holds `h`'s waiters while its probe runs: they wait for nothing any worker could give
    /// them, so they are published as waiting for no limit.
    mutating func holdForProbe(_ h: Int) {
        guard hosts[h].block != .none else { return }
        hosts[h].block = .none
        publish(h)
    }

    /// `id` starts on `h`: while the host's protocol is unknown, the first is the probe.
    mutating func started(_ id: TransferID, host h: Int) {
        if hosts[h].awaitsProtocol && hosts[h].probe == nil { hosts[h].probe = id }
    }

    /// A response of `h` showed its protocol for the first time: its waiters start as the
    /// protocol allows (on the probe's streams and then one new connection at a time, or each
    /// with a lease). Returns false if the protocol was known already.
    mutating func protocolLearnt(host h: Int, multiplexed: Bool, _ actions: inout [PoolAction]) -> Bool {
        guard hosts[h].awaitsProtocol else { return false }
        hosts[h].awaitsProtocol = false
        hosts[h].probe = nil
        hosts[h].holdUntil = nil
        hosts[h].holdReleased = false
        hosts[h].multiplexed = multiplexed
        hosts[h].fullAt = nil
        if hosts[h].waiting > 0 { admit(h, &actions) }
        return true
    }
}
