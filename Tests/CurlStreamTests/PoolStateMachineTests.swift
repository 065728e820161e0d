import Testing
@testable import CurlStream

/// The pool's decisions, event by event: no sockets, no libcurl, no sleeping (time is a value).
@Suite struct PoolStateMachineTests {
    @Test func perHostLimitHoldsAndWaitersRunInOrder() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 2)
        let a = sim.host("http://a:80")
        let ids = (0..<5).map { _ in sim.request(0, host: a) }
        #expect(sim.workers[0].started == Array(ids[0..<2]))
        #expect(sim.workers[0].pool.hosts[a].block == .onHost)
        for id in ids[0..<2] { sim.connect(0, id, reuse: false) }
        sim.checkBooks("two connected")
        // The first ends and keeps its connection: the oldest waiter reuses it, no new lease.
        sim.end(0, ids[0])
        #expect(sim.workers[0].started == Array(ids[0..<3]))
        #expect(sim.workers[0].log.last == .start(ids[2], lease: false))
        sim.connect(0, ids[2], reuse: true)
        // The second ends and its connection closes: its lease goes to the next waiter.
        sim.end(0, ids[1], keepConnection: false)
        #expect(sim.workers[0].started == Array(ids[0..<4]))
        #expect(sim.workers[0].log.last == .start(ids[3], lease: true))
        sim.checkBooks("after two endings")
        #expect(sim.budget.openConnections == 2)
    }

    @Test func totalLimitHoldsAcrossHosts() {
        let sim = PoolSimulation(maxConnections: 3, perHost: 10)
        let a = sim.host("http://a:80"), b = sim.host("http://b:80")
        let ids = [sim.request(0, host: a), sim.request(0, host: b), sim.request(0, host: a),
                   sim.request(0, host: b), sim.request(0, host: a)]
        #expect(sim.workers[0].started == Array(ids[0..<3]))
        #expect(sim.workers[0].pool.hosts[b].block == .onTotal)
        #expect(sim.budget.openConnections == 3)
        sim.checkBooks("three admitted")
    }

    @Test func perHostAboveTotalIsCappedByIt() {
        let budget = ConnectionBudget(maxConnections: 3, maxConnectionsPerHost: 10, maxKeepalive: 20, workers: 16)
        #expect(budget.maxConnectionsPerHost == 3)
    }

    /// With one slot in all, slots go to transfers in arrival order whatever their host; an
    /// idle connection to A is given up for an older waiter of B rather than reused by a
    /// younger waiter of A.
    @Test func slotsGoOldestFirstAcrossHosts() {
        let sim = PoolSimulation(maxConnections: 1, perHost: 1)
        let a = sim.host("http://a:80"), b = sim.host("http://b:80")
        let a1 = sim.request(0, host: a), b1 = sim.request(0, host: b)
        let a2 = sim.request(0, host: a), b2 = sim.request(0, host: b)
        sim.connect(0, a1, reuse: false)
        sim.end(0, a1)
        #expect(sim.workers[0].givenUp == 1)
        #expect(sim.workers[0].started == [a1, b1])
        sim.connect(0, b1, reuse: false)
        sim.end(0, b1)
        #expect(sim.workers[0].started == [a1, b1, a2])
        sim.connect(0, a2, reuse: false)
        sim.end(0, a2, keepConnection: false)
        #expect(sim.workers[0].started == [a1, b1, a2, b2])
        sim.checkBooks("four in turn")
    }

    @Test func waitersTimeOutAtPoolTimeout() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 1, poolTimeout: .milliseconds(500))
        let a = sim.host("http://a:80")
        let first = sim.request(0, host: a)
        sim.advance(.milliseconds(200))
        let second = sim.request(0, host: a)
        sim.advance(.milliseconds(299))
        #expect(sim.workers[0].timedOut.isEmpty)
        #expect(sim.workers[0].pool.nextDeadline() == sim.now + .milliseconds(201))
        sim.advance(.milliseconds(201))
        #expect(sim.workers[0].timedOut == [second])
        #expect(sim.workers[0].pool.nextDeadline() == nil)
        #expect(sim.workers[0].started == [first])
        sim.checkBooks("after the timeout")
    }

    /// Every way a transfer ends returns its slot at once, exactly once.
    @Test func everyEndingReturnsItsSlot() {
        let sim = PoolSimulation(maxConnections: 1, perHost: 1)
        let a = sim.host("http://a:80")
        // Cut before it connected (its reservation returns).
        let cut = sim.request(0, host: a)
        let next = sim.request(0, host: a)
        sim.end(0, cut)
        #expect(sim.workers[0].started == [cut, next])
        // Ended with its connection closed (error, cut, read timeout).
        sim.connect(0, next, reuse: false)
        let third = sim.request(0, host: a)
        sim.end(0, next, keepConnection: false)
        #expect(sim.workers[0].started.last == third)
        // Done, connection kept: reused by the next; then the idle connection expires.
        sim.connect(0, third, reuse: false)
        let fourth = sim.request(0, host: a)
        sim.end(0, third)
        #expect(sim.workers[0].log.last == .start(fourth, lease: false))
        sim.connect(0, fourth, reuse: true)
        sim.end(0, fourth)
        sim.closeIdle(0, host: a)
        #expect(sim.budget.openConnections == 0)
        // Cancelled while waiting, and refused a socket (then queued again).
        let holder = sim.request(0, host: a)
        let cancelled = sim.request(0, host: a)
        sim.cancelWaiting(0, cancelled)
        sim.connect(0, holder, reuse: false)
        sim.end(0, holder)
        let reuser = sim.request(0, host: a)
        sim.closeIdle(0, host: a)  // the idle connection it was admitted for dies first
        sim.connect(0, reuser, reuse: true)  // opens a socket: a lease is free, granted
        #expect(sim.workers[0].connected[reuser] == a)
        let other = sim.request(0, host: a)
        sim.end(0, reuser, keepConnection: false)
        #expect(sim.workers[0].started.last == other)
        sim.connect(0, other, reuse: false)
        sim.end(0, other, keepConnection: false)
        sim.checkBooks("every ending")
        #expect(sim.budget.openConnections == 0)
        #expect(sim.workers[0].pool.runningCount == 0 && sim.workers[0].pool.waitingCount == 0)
    }

    /// A transfer admitted to reuse an idle connection that libcurl does not reuse, with no
    /// lease free, goes back to the queue and waits for a lease of its own.
    @Test func refusedSocketQueuesAgainForANewConnection() {
        let sim = PoolSimulation(maxConnections: 1, perHost: 1)
        let a = sim.host("http://a:80")
        let first = sim.request(0, host: a)
        sim.connect(0, first, reuse: false)
        sim.end(0, first)
        let second = sim.request(0, host: a)
        #expect(sim.workers[0].log.last == .start(second, lease: false))
        sim.connect(0, second, reuse: false)  // libcurl opens anyway: refused, queued again
        // It gave up the idle connection libcurl would not use, and took its lease.
        #expect(sim.workers[0].givenUp == 1)
        #expect(sim.workers[0].log.last == .start(second, lease: true))
        sim.connect(0, second, reuse: false)
        sim.checkBooks("new connection")
    }

    /// Worker 1 waits for the host's only slot, held idle by worker 0: worker 0, poked, gives
    /// it up on its own thread once handoverDelay has passed with no transfer of its own taking
    /// it, and worker 1, poked back, takes the lease.
    @Test func idleConnectionOfAnotherWorkerIsGivenUp() {
        let sim = PoolSimulation(workers: 2, maxConnections: 10, perHost: 1)
        let a = sim.host("http://a:80")
        let t0 = sim.request(0, host: a)
        sim.connect(0, t0, reuse: false)
        sim.end(0, t0)
        #expect(sim.budget.idleConnections == 1)
        let t1 = sim.request(1, host: a)
        #expect(sim.workers[1].started.isEmpty)
        #expect(sim.workers[1].log == [.poke(worker: 0)])
        #expect(sim.deliverPoke())
        #expect(sim.workers[0].givenUp == 0 && sim.workers[0].log.last == .scheduleHandover)
        sim.deliverAllPokes()
        #expect(sim.workers[0].givenUp == 1)
        #expect(sim.workers[1].started == [t1])
        sim.checkBooks("borrowed")
        sim.checkNobodyStarves("borrowed")
    }

    /// A connection that goes idle on one worker while another waits for its host is handed
    /// over once it has stayed idle for handoverDelay (it would have been reused had a transfer
    /// of its own worker come meanwhile), without a poke.
    @Test func connectionGoingIdleServesAnotherWorkersWaiter() {
        let sim = PoolSimulation(workers: 2, maxConnections: 10, perHost: 1)
        let a = sim.host("http://a:80")
        let t0 = sim.request(0, host: a)
        sim.connect(0, t0, reuse: false)
        let t1 = sim.request(1, host: a)
        #expect(sim.workers[1].log.isEmpty, "nobody holds an idle connection yet: no poke")
        sim.end(0, t0)
        #expect(sim.workers[0].givenUp == 0)
        #expect(sim.workers[0].log.last == .scheduleHandover)
        sim.advance(PoolStateMachine.handoverDelay)
        #expect(sim.workers[0].givenUp == 1)
        sim.deliverAllPokes()
        #expect(sim.workers[1].started == [t1])
        sim.checkNobodyStarves("handed over")
    }

    /// One stream may use every slot: with 2 workers and a per-host limit of 2, twenty waiting
    /// transfers on worker 0 run two at a time.
    @Test func oneWorkerMayHoldEverySlot() {
        let sim = PoolSimulation(workers: 2, maxConnections: 100, perHost: 2)
        let a = sim.host("http://a:80")
        let ids = (0..<20).map { _ in sim.request(0, host: a) }
        #expect(sim.workers[0].started == Array(ids[0..<2]))
    }

    /// Beyond maxKeepalive, a connection that goes idle is given up.
    @Test func idleConnectionsStayWithinMaxKeepalive() {
        let sim = PoolSimulation(maxConnections: 10, perHost: 10, maxKeepalive: 1)
        let a = sim.host("http://a:80")
        let ids = (0..<3).map { _ in sim.request(0, host: a) }
        for id in ids { sim.connect(0, id, reuse: false) }
        for id in ids { sim.end(0, id) }
        #expect(sim.budget.idleConnections == 1)
        #expect(sim.workers[0].givenUp == 2)
        sim.checkBooks("kept one")
    }

    /// Two busy workers share a host's slots evenly: the one that got them all first hands
    /// connections over as they go idle until each holds half, then reuses its own again (each
    /// hand-over costs the other a new connection, so it stops there). Without this the first
    /// worker would keep every connection and the other's transfers would wait out poolTimeout.
    @Test func busyWorkersSettleAtAnEvenSplit() {
        let (sim, a, first) = twoBusyWorkers(waiting: 10)
        sim.deliverAllPokes()
        #expect(sim.workers[1].started.isEmpty)
        for (n, id) in first[0..<3].enumerated() {
            sim.end(0, id)
            sim.deliverAllPokes()
            sim.connectAdmitted(reuseOnWorker0: true)
            sim.checkBooks("ending \(n)")
        }
        // Two hand-overs (4-0, 3-1, 2-2), then the third ending is reused at home.
        #expect(sim.workers[0].givenUp == 2)
        #expect(sim.workers[1].started.count == 2)
        #expect(sim.workers[0].started.count == 5)
        #expect(sim.workers[0].pool.hosts[a].open == 2 && sim.workers[1].pool.hosts[a].open == 2)
    }

    /// A transfer of the same worker that comes within handoverDelay reuses the connection; the
    /// hand-over then finds nothing to give (no new connection for anyone).
    @Test func ownTransferWithinTheDelayReusesTheConnection() {
        let sim = PoolSimulation(workers: 2, maxConnections: 10, perHost: 1)
        let a = sim.host("http://a:80")
        let t0 = sim.request(0, host: a)
        sim.connect(0, t0, reuse: false)
        sim.request(1, host: a)
        sim.end(0, t0)
        let t2 = sim.request(0, host: a)
        #expect(sim.workers[0].log.last == .start(t2, lease: false))
        sim.advance(PoolStateMachine.handoverDelay)
        sim.deliverAllPokes()
        #expect(sim.workers[0].givenUp == 0)
        #expect(sim.workers[1].started.isEmpty)
        sim.checkBooks("reused at home")
    }

    /// Transfers that end by closing their connection (remainders too large to drain are cut)
    /// return a lease each time: the worker holding more than its share leaves it to a waiting
    /// worker that holds none, instead of taking every lease back for its own queue (which
    /// starved the other worker's transfers into `pool` errors in W3).
    @Test func leasesOfClosedConnectionsAreShared() {
        let (sim, a, first) = twoBusyWorkers(waiting: 20)
        for id in first[0..<6] {
            guard sim.workers[0].connected[id] != nil else { continue }
            sim.end(0, id, keepConnection: false)
            sim.deliverAllPokes()
            sim.connectAdmitted(reuseOnWorker0: false)
            sim.checkBooks("after \(id)")
        }
        #expect(sim.workers[1].started.count == 2)
        #expect(sim.workers[0].pool.hosts[a].open == 2 && sim.workers[1].pool.hosts[a].open == 2)
        sim.checkNobodyStarves("shared")
    }
}

/// Two workers with `waiting` transfers each for one host of 4 slots; worker 0 came first and
/// holds every slot (its first four transfers connected).
private func twoBusyWorkers(waiting: Int) -> (PoolSimulation, Int, [TransferID]) {
    let sim = PoolSimulation(workers: 2, maxConnections: 100, perHost: 4)
    let a = sim.host("http://a:80")
    let first = (0..<waiting).map { _ in sim.request(0, host: a) }
    for id in first[0..<4] { sim.connect(0, id, reuse: false) }
    for _ in 0..<waiting { sim.request(1, host: a) }
    return (sim, a, first)
}

extension PoolSimulation {
    /// Connects every started transfer of both workers (worker 1's on new connections).
    func connectAdmitted(reuseOnWorker0: Bool) {
        for id in workers[0].admitted.keys { connect(0, id, reuse: reuseOnWorker0) }
        for id in workers[1].admitted.keys { connect(1, id, reuse: false) }
    }
}
