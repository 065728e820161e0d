import Testing
@testable import CurlStream

/// The probe of an HTTPS host whose protocol is unknown (PoolStateMachine+Probe): one transfer
/// runs until its response head shows whether the host multiplexes; the others wait for it.
extension PoolStateMachineTests {
    /// A cold burst of 250 transfers to an HTTP/2 host with 100 streams a connection opens
    /// exactly the three connections it needs: the probe's, then one at a time as each fills.
    /// (Admitting the burst with leases before the first head opened one per lease holder
    /// beyond the first full connection.)
    @Test func coldBurstOpensOnlyTheConnectionsNeeded() {
        let sim = PoolSimulation(maxConnections: 20, perHost: 10, maxStreamsPerConnection: 100, probesProtocol: true)
        let a = sim.host("https://a:443")
        sim.multiplexed[a] = 100
        let ids = (0..<250).map { _ in sim.request(0, host: a) }
        // One probe with a lease; the others wait for its answer, asking no worker for anything.
        #expect(sim.workers[0].log == [.start(ids[0], lease: true)])
        #expect(ids.dropFirst().allSatisfy { sim.workers[0].pool.waits($0) == (true, false) })
        #expect(sim.workers[0].pool.hosts[a].block == .none)
        #expect(sim.workers[0].pool.hosts[a].budget.waitingSum.load(ordering: .relaxed) == 0)
        sim.connect(0, ids[0], reuse: false)
        #expect(sim.workers[0].started == [ids[0]])
        sim.head(0, ids[0])
        // HTTP/2: 99 take the probe's free streams, the next one a lease for a new connection.
        #expect(sim.workers[0].started == Array(ids[0..<101]))
        #expect(sim.workers[0].log.filter { $0 == .start(ids[100], lease: true) }.count == 1)
        sim.runBurst(0)
        #expect(sim.workers[0].started.count == 250 && sim.workers[0].waiting.isEmpty)
        #expect(sim.workers[0].streams[a]?.values.sorted() == [50, 100, 100])
        #expect(sim.budget.peakConnections == 3)
        sim.checkBooks("cold burst")
        sim.checkStreams("cold burst")
        sim.checkProbes("cold burst")
    }

    /// An HTTP/1.1 answer releases the waiters as for any HTTP/1.1 host: each with a lease,
    /// up to the per-host limit.
    @Test func http11AnswerReleasesTheWaitersWithLeases() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 3, probesProtocol: true)
        let a = sim.host("https://a:443")
        let ids = (0..<5).map { _ in sim.request(0, host: a) }
        sim.connect(0, ids[0], reuse: false)
        #expect(sim.workers[0].started == [ids[0]])
        sim.head(0, ids[0])
        #expect(sim.workers[0].started == Array(ids[0..<3]))
        #expect(sim.workers[0].log.suffix(2) == [.start(ids[1], lease: true), .start(ids[2], lease: true)])
        let host = sim.workers[0].pool.hosts[a]
        #expect(!host.awaitsProtocol && !host.multiplexed && host.block == .onHost)
        sim.checkBooks("answered in HTTP/1.1")
        sim.checkProbes("answered in HTTP/1.1")
    }

    /// A probe that fails after connecting, or is cut before it connects, hands the role to
    /// the oldest waiter at once; the host is still probed.
    @Test func failedOrCutProbeHandsTheRoleOn() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 4, probesProtocol: true)
        let a = sim.host("https://a:443")
        sim.multiplexed[a] = 100
        let ids = (0..<3).map { _ in sim.request(0, host: a) }
        sim.connect(0, ids[0], reuse: false)
        sim.end(0, ids[0], keepConnection: false)  // an error before its head: the connection closes
        #expect(sim.workers[0].started == Array(ids[0..<2]))
        #expect(sim.workers[0].log.last == .start(ids[1], lease: true))
        #expect(sim.workers[0].pool.hosts[a].probe == ids[1])
        sim.end(0, ids[1])  // cut (cancelled) before it connected: its lease returns
        #expect(sim.workers[0].started == ids)
        #expect(sim.workers[0].pool.hosts[a].probe == ids[2] && sim.workers[0].pool.hosts[a].awaitsProtocol)
        #expect(sim.budget.openConnections == 1)
        sim.checkBooks("probes failed")
        sim.checkProbes("probes failed")
    }

    /// A probe admitted onto an idle connection that libcurl does not reuse, with no lease
    /// free, is refused its socket: it waits again, the idle connection is given up for it, and
    /// it probes with that lease.
    @Test func refusedProbeWaitsForALease() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 1, probesProtocol: true)
        let a = sim.host("https://a:443")
        let first = sim.request(0, host: a), second = sim.request(0, host: a)
        sim.connect(0, first, reuse: false)
        sim.end(0, first)  // ended before its head, its connection kept
        #expect(sim.workers[0].log.last == .start(second, lease: false))
        #expect(sim.workers[0].pool.hosts[a].probe == second)
        sim.connect(0, second, reuse: false)
        #expect(sim.workers[0].givenUp == 1)
        #expect(sim.workers[0].log.last == .start(second, lease: true))
        #expect(sim.workers[0].pool.hosts[a].probe == second)
        sim.checkBooks("refused probe")
        sim.checkProbes("refused probe")
    }

    /// Waiters held for the probe may be cancelled without touching it, and still time out at
    /// poolTimeout when no lease comes.
    @Test func heldWaitersCancelAndTimeOut() {
        let sim = PoolSimulation(maxConnections: 1, perHost: 10, poolTimeout: .seconds(1), probesProtocol: true)
        let a = sim.host("https://a:443")
        let probe = sim.request(0, host: a)
        sim.advance(.milliseconds(100))
        let cancelled = sim.request(0, host: a), late = sim.request(0, host: a)
        sim.cancelWaiting(0, cancelled)
        #expect(sim.workers[0].pool.hosts[a].probe == probe && sim.workers[0].pool.hosts[a].waiting == 1)
        sim.connect(0, probe, reuse: false)
        sim.advance(.milliseconds(1000))
        #expect(sim.workers[0].timedOut == [late])
        #expect(sim.workers[0].started == [probe])
        sim.checkBooks("held waiters gone")
    }

    /// A probe whose head is slow holds the others for probeHold only (half of poolTimeout, at
    /// most 1 s): then they take leases, and do not fail at poolTimeout for its slowness.
    @Test func aSlowProbeHoldsTheOthersForProbeHoldOnly() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 10, poolTimeout: .seconds(5), probesProtocol: true)
        let a = sim.host("https://a:443")
        let probe = sim.request(0, host: a)
        let held = sim.request(0, host: a)
        sim.connect(0, probe, reuse: false)
        sim.advance(.milliseconds(999))
        #expect(sim.workers[0].started == [probe], "held within the hold")
        sim.advance(.milliseconds(2))
        #expect(sim.workers[0].started == [probe, held], "released with a lease after it")
        #expect(sim.workers[0].timedOut.isEmpty)
        sim.checkBooks("slow probe")
    }

    /// Plain-HTTP hosts, and HTTPS hosts under upstreamHTTP 1.1, set no PIPEWAIT: nothing
    /// waits for a probe.
    @Test func plainHTTPAndForcedHTTP11AreNotProbed() {
        let auto = PoolSimulation(maxConnections: 10, perHost: 10, probesProtocol: true)
        let plain = auto.host("http://a:80")
        let ids = (0..<3).map { _ in auto.request(0, host: plain) }
        #expect(auto.workers[0].started == ids && !auto.workers[0].pool.hosts[plain].awaitsProtocol)
        let forced = PoolSimulation(maxConnections: 10, perHost: 10, probesProtocol: false)
        let tls = forced.host("https://a:443")
        let more = (0..<3).map { _ in forced.request(0, host: tls) }
        #expect(forced.workers[0].started == more && !forced.workers[0].pool.hosts[tls].awaitsProtocol)
    }
}

extension PoolSimulation {
    /// Connects every started transfer of worker `w` (oldest first) and delivers every response
    /// head due, until nothing more starts.
    func runBurst(_ w: Int) {
        var rounds = 0
        while !workers[w].admitted.isEmpty || !workers[w].headDue.isEmpty {
            rounds += 1
            guard rounds <= 1000 else {
                Issue.record("the burst never settles")
                return
            }
            for id in workers[w].admitted.keys.sorted(by: { $0.raw < $1.raw }) { connect(w, id, reuse: true) }
            for id in workers[w].headDue.sorted(by: { $0.raw < $1.raw }) { head(w, id) }
        }
    }
}
