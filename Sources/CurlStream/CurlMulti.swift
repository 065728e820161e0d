import CCurl
import CEvent
import EventLoop

/// libcurl's global state, initialised once per process before the first multi handle.
private let curlGlobal: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

/// One libcurl multi handle driven by one ``EventLoop`` through the multi-socket API.
///
/// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
/// (CURLMOPT_TIMERFUNCTION); libevent watches them; each readiness or timeout goes back to
/// `curl_multi_socket_action`, after which finished transfers are collected. On top of that
/// this type enforces the pool limits (connection slots per host and in all, with a FIFO wait
/// bounded by `poolTimeout`), a read timeout, and the drain-or-cut policy that keeps
/// connections reusable.
///
/// libcurl forbids calling the multi interface from inside its callbacks, and a consumer may
/// react to an event by cancelling or pausing any transfer; so operations asked for while
/// libcurl is on the stack are deferred until the outermost libcurl call returns.
public final class CurlMulti {
    public let loop: EventLoop
    public let options: TransferOptions
    /// The multi handle; replaced by a fresh one when the multi has been idle for
    /// `keepaliveExpiry` (see ``recycleIfIdle()``).
    var multi: UnsafeMutableRawPointer
    var timerEvent: OpaquePointer!
    var sockets: [curl_socket_t: OpaquePointer] = [:]

    var transfers: [TransferID: Transfer] = [:]
    var admission: Admission
    let ledger: ConnectionLedger
    let budget: ConnectionBudget
    var poolTimer: LoopTimer!
    var soonTimer: LoopTimer!
    var idleTimer: LoopTimer!
    var readSweep: LoopTimer!
    /// Easy handles of finished transfers, reset, ready for the next ones.
    var easyPool: [UnsafeMutableRawPointer] = []
    static let easyPoolSize = 256
    var nextID: UInt64 = 1

    /// How many libcurl calls are on the stack (callbacks may run inside any of them).
    var curlDepth = 0
    var deferred: [Deferred] = []
    var failuresToReport: [(Transfer, TransferError)] = []
    var settling = false

    /// What this multi has done, readable from any thread.
    public let counters = CurlMultiCounters()

    enum Deferred {
        case remove(TransferID)
        case unpause(TransferID)
    }

    /// - Parameter budget: the process-wide connection limits this multi shares with others;
    ///   nil for a budget of its own from `options`.
    public init(loop: EventLoop, options: TransferOptions, budget: ConnectionBudget? = nil) throws(CurlMultiError) {
        loop.preconditionInEventLoop()
        precondition(curlGlobal == CURLE_OK, "curl_global_init failed")
        self.loop = loop
        self.options = options
        let budget = budget ?? ConnectionBudget(maxConnections: options.maxConnections,
                                                maxConnectionsPerHost: options.maxConnectionsPerHost)
        self.budget = budget
        self.ledger = ConnectionLedger(budget: budget)
        self.admission = Admission(ledger: ledger)
        self.multi = try Self.makeMultiHandle(options: options)

        let me = Unmanaged.passUnretained(self).toOpaque()
        timerEvent = event_new(loop.base, -1, 0, curlTimerFired, me)
        poolTimer = LoopTimer(loop: loop) { [unowned self] in self.expireQueued() }
        soonTimer = LoopTimer(loop: loop) { [unowned self] in self.reportFailures() }
        idleTimer = LoopTimer(loop: loop) { [unowned self] in self.recycleIfIdle() }
        readSweep = LoopTimer(loop: loop) { [unowned self] in self.sweepReadTimeouts() }
        attachCallbacks()
    }

    deinit {
        for transfer in transfers.values where transfer.isActive {
            curl_multi_remove_handle(multi, transfer.easy)
            transfer.detachEasy().map { curl_easy_cleanup($0) }
        }
        for easy in easyPool { curl_easy_cleanup(easy) }
        transfers.removeAll()
        closeMultiHandle()
        event_free(timerEvent)
        ledger.releaseAll()
    }

    private static func makeMultiHandle(options: TransferOptions) throws(CurlMultiError) -> UnsafeMutableRawPointer {
        guard let multi = curl_multi_init() else { throw CurlMultiError(CURLM_OUT_OF_MEMORY, call: "curl_multi_init") }
        func set(_ rc: CURLMcode, _ name: String) throws(CurlMultiError) {
            if rc != CURLM_OK {
                curl_multi_cleanup(multi)
                throw CurlMultiError(rc, call: "curl_multi_setopt(\(name))")
            }
        }
        // No libcurl connection limits: admission and the budget's leases (taken in the
        // open-socket callback) enforce them exactly. libcurl's own limits would count dead
        // connections still in its cache and queue transfers internally, out of our sight.
        // The default (4 x handles added) shrinks the cache after a burst.
        try set(CCurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, options.maxKeepalive), "MAXCONNECTS")
        return multi
    }

    func attachCallbacks() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = CCurl_multi_setopt_socket_callback(multi, CURLMOPT_SOCKETFUNCTION, socketCallback)
        _ = CCurl_multi_setopt_pointer(multi, CURLMOPT_SOCKETDATA, me)
        _ = CCurl_multi_setopt_timer_callback(multi, CURLMOPT_TIMERFUNCTION, timerCallback)
        _ = CCurl_multi_setopt_pointer(multi, CURLMOPT_TIMERDATA, me)
    }

    /// Closes the multi handle and every connection it caches (each reported to the ledger).
    func closeMultiHandle() {
        // No socket or timer callback may reach us while the handle closes its connections.
        _ = CCurl_multi_setopt_socket_callback(multi, CURLMOPT_SOCKETFUNCTION, nil)
        _ = CCurl_multi_setopt_timer_callback(multi, CURLMOPT_TIMERFUNCTION, nil)
        curl_multi_cleanup(multi)
        for event in sockets.values { event_free(event) }
        sockets.removeAll()
        event_del(timerEvent)
    }

    /// libcurl closes an idle connection only when a later transfer looks for one, so an idle
    /// multi would keep expired connections (and their descriptors) forever. After
    /// `keepaliveExpiry` without transfers, the handle is replaced by a fresh one, which closes
    /// them all.
    func recycleIfIdle() {
        guard transfers.isEmpty, ledger.hasSockets, curlDepth == 0, !settling else { return }
        guard let fresh = try? Self.makeMultiHandle(options: options) else { return }
        closeMultiHandle()
        multi = fresh
        attachCallbacks()
    }

    // MARK: - Consumer API

    /// Starts fetching `request`. Events reach `onEvent` on the loop, never before this returns.
    public func start(_ request: TransferRequest, onEvent: @escaping (TransferEvent) -> Void) -> TransferID {
        loop.assertInEventLoop()
        let id = TransferID(raw: nextID)
        nextID += 1
        let transfer = Transfer(id: id, request: request, deadline: .now + .seconds(options.poolTimeout), onEvent: onEvent)
        transfer.host = admission.host(request.hostKey)
        transfer.ledger = ledger
        transfer.receiveBuffer = options.socketReceiveBuffer
        transfers[id] = transfer
        counters.started.increment()
        admission.enqueue(transfer)
        counters.queued.increment()
        settle()
        armPoolTimer()
        return id
    }

    /// Stops reading `id` after the bytes being delivered now: its upstream socket stops being
    /// read, so the upstream is held back by TCP flow control.
    public func pause(_ id: TransferID) {
        loop.assertInEventLoop()
        transfers[id]?.pauseWanted = true
    }

    /// Undoes ``pause(_:)``. Bytes held back are delivered first (from here, then libcurl).
    public func resume(_ id: TransferID) {
        loop.assertInEventLoop()
        guard let t = transfers[id], t.pauseWanted || t.pausedInCurl || t.hasHeldBytes else { return }
        t.pauseWanted = false
        t.lastActivity = .now
        t.deliverHeld()
        guard transfers[id] === t, !t.pauseWanted, !t.hasHeldBytes else { return }
        if case .delivering(let end) = t.state {
            transfers[id] = nil
            t.onEvent(end)
        } else if t.pausedInCurl {
            deferred.append(.unpause(id))
            settle()
        }
    }

    /// The consumer has what it wants from `id` and hears nothing more. A remainder known to be
    /// at most `drainLimit` bytes is read and discarded so the connection can be reused;
    /// otherwise the transfer is cut (libcurl never reuses a connection it aborted).
    public func finish(_ id: TransferID) {
        loop.assertInEventLoop()
        guard let t = transfers[id] else { return }
        if case .running = t.state, let length = t.contentLength,
           length - t.bytesReceived <= Int64(options.drainLimit) {
            t.state = .draining
            t.pauseWanted = false
            t.dropHeld()
            counters.drained.increment()
            if t.pausedInCurl {
                deferred.append(.unpause(id))
                settle()
            }
            return
        }
        cancel(id)
    }

    /// Stops `id` at once; the consumer hears nothing more.
    public func cancel(_ id: TransferID) {
        loop.assertInEventLoop()
        guard let t = transfers[id] else { return }
        switch t.state {
        case .queued:
            admission.withdraw(t)
            counters.queued.decrement()
            transfers[id] = nil
            armPoolTimer()
        case .delivering:
            t.dropHeld()
            transfers[id] = nil
        case .aborting:
            return
        case .running, .draining:
            t.state = .aborting
            t.dropHeld()
            counters.cut.increment()
            if curlDepth == 0 {
                remove(t)
                settle()
            } else {
                deferred.append(.remove(id))
            }
        }
    }

    /// Transfers that have not ended yet (active or queued).
    public var count: Int { transfers.count }

    // MARK: - Admission

    /// Moves queued transfers into free slots, oldest first (a transfer whose host is at its
    /// limit does not hold back one for another host).
    func admit() {
        var admitted = false
        while let t = admission.admitNext() {
            counters.queued.decrement()
            activate(t)
            admitted = true
        }
        if admitted { armPoolTimer() }
    }


    /// Gives `t` a pooled easy handle, or a new one. A handle that refuses an option is never
    /// trusted with a transfer: it is freed, and a new handle gets one more chance.
    private func attachHandle(to t: Transfer) -> Bool {
        if let pooled = easyPool.popLast() {
            if t.attach(pooled, options: options) { return true }
            if let easy = t.detachEasy() { curl_easy_cleanup(easy) }
        }
        guard let fresh = curl_easy_init() else { return false }
        if t.attach(fresh, options: options) { return true }
        if let easy = t.detachEasy() { curl_easy_cleanup(easy) }
        return false
    }

    func activate(_ t: Transfer) {
        counters.active.increment()
        t.state = .running
        t.lastActivity = .now
        guard attachHandle(to: t) else {
            fail(t, TransferError(kind: .protocol, message: "could not set up a transfer for \(t.request.url)"))
            return
        }
        let rc = curl_multi_add_handle(multi, t.easy)
        guard rc == CURLM_OK else {
            fail(t, TransferError(kind: .protocol, message: CurlMultiError(rc, call: "curl_multi_add_handle").description))
            return
        }
        if !readSweep.isScheduled { readSweep.schedule(after: readSweepInterval) }
    }

    func armPoolTimer() {
        if let head = admission.oldestWaiting, case .queued(let deadline) = head.state {
            let wait = ContinuousClock.now.duration(to: deadline)
            poolTimer.schedule(after: max(0, wait.seconds))
        } else {
            poolTimer.cancel()
        }
    }

    func expireQueued() {
        let now = ContinuousClock.now
        while let head = admission.oldestWaiting, case .queued(let deadline) = head.state, deadline <= now {
            admission.withdraw(head)
            counters.queued.decrement()
            transfers[head.id] = nil
            count(.pool)
            head.onEvent(.failed(TransferError(
                kind: .pool,
                message: "no connection slot for \(head.request.hostKey) within \(formatSeconds(options.poolTimeout)) "
                    + "(maxConnections \(options.maxConnections), per host \(options.maxConnectionsPerHost))")))
        }
        armPoolTimer()
    }

    // MARK: - Timeouts

    /// How often active transfers are checked for the read timeout: a quarter of it, at most a
    /// second (so a timeout fires between readTimeout and readTimeout plus this).
    var readSweepInterval: Double { min(1, options.readTimeout / 4) }

    /// One sweep over the active transfers instead of a timer per transfer: a transfer that has
    /// had no byte for `readTimeout` fails with a timeout. A paused transfer waits for our
    /// client, not for its upstream, so its clock restarts.
    func sweepReadTimeouts() {
        let now = ContinuousClock.now
        for t in Array(transfers.values) where t.isActive && transfers[t.id] === t {
            if t.pauseWanted || t.pausedInCurl || t.hasHeldBytes {
                t.lastActivity = now
                continue
            }
            guard t.lastActivity.duration(to: now).seconds + 0.001 >= options.readTimeout else { continue }
            let wasRunning = if case .running = t.state { true } else { false }
            remove(t)
            if wasRunning {
                count(.timeout)
                t.onEvent(.failed(TransferError(kind: .timeout,
                    message: "no data from \(t.request.url) for \(formatSeconds(options.readTimeout))")))
            }
        }
        settle()
        if counters.active.load(ordering: .relaxed) > 0 { readSweep.schedule(after: readSweepInterval) }
    }

    // MARK: - Driving libcurl

    func socketAction(_ fd: curl_socket_t, _ flags: Int32) {
        var running: Int32 = 0
        curlDepth += 1
        curl_multi_socket_action(multi, fd, flags, &running)
        curlDepth -= 1
        settle()
    }

    /// `curl_easy_pause(CONT)`; libcurl may deliver held bytes from inside it.
    func unpause(_ t: Transfer) {
        guard let easy = t.easy else { return }
        t.pausedInCurl = false
        curlDepth += 1
        curl_easy_pause(easy, CCurl_PAUSE_CONT)
        curlDepth -= 1
    }

    /// Runs after the outermost libcurl call returns (and after any consumer-side change):
    /// collects finished transfers, runs what was deferred, admits queued transfers into free
    /// slots, until nothing is left. Nested calls return at once; the outer one loops.
    func settle() {
        guard curlDepth == 0, !settling else { return }
        settling = true
        defer { settling = false }
        var again = true
        while again {
            again = false
            collectFinished()
            let work = deferred
            deferred.removeAll()
            for item in work {
                switch item {
                case .remove(let id):
                    if let t = transfers[id], t.isActive { remove(t) }
                case .unpause(let id):
                    if let t = transfers[id], t.pausedInCurl, !t.pauseWanted {
                        unpause(t)
                        again = true
                    }
                }
            }
            admit()
            if !deferred.isEmpty { again = true }
        }
    }

    func collectFinished() {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
            let result = msg.pointee.data.result
            var raw: UnsafeMutablePointer<CChar>?
            _ = CCurl_easy_getinfo_string(easy, CURLINFO_PRIVATE, &raw)
            guard let raw else { continue }
            let t = Unmanaged<Transfer>.fromOpaque(UnsafeRawPointer(raw)).takeUnretainedValue()
            complete(t, result)
        }
    }

    func complete(_ t: Transfer, _ result: CURLcode) {
        let wasRunning = if case .running = t.state { true } else { false }
        if wasRunning, t.leaseDenied, !t.headSent, result == CURLE_COULDNT_CONNECT {
            // Our open-socket callback refused it (no lease): not the upstream's fault. Queue it
            // again, now to be admitted only with a lease of its own.
            releaseConnection(t)
            t.requeue(deadline: .now + .seconds(options.poolTimeout))
            admission.enqueue(t)
            counters.queued.increment()
            armPoolTimer()
            return
        }
        let detail = t.errorDetail
        let reused = t.info(CURLINFO_NUM_CONNECTS) == 0
        if !t.headSent && wasRunning && result == CURLE_OK { t.sendHead() }
        let end: TransferEvent
        if result == CURLE_OK {
            counters.succeeded.increment()
            end = .end(TransferSummary(bytesReceived: t.bytesReceived, reusedConnection: reused))
        } else {
            let error = TransferError(curl: result, detail: detail)
            count(error.kind)
            end = .failed(error)
        }
        guard wasRunning, t.hasHeldBytes else {
            remove(t)
            if wasRunning { t.onEvent(end) }
            return
        }
        // The consumer is paused with bytes still held: free the connection now, report the
        // end after those bytes (see resume).
        releaseConnection(t)
        t.state = .delivering(end: end)
    }

    /// Takes an active transfer off the multi handle, frees its slot and handle, and forgets it.
    func remove(_ t: Transfer) {
        guard t.isActive, transfers[t.id] != nil else { return }
        releaseConnection(t)
        transfers[t.id] = nil
        if transfers.isEmpty { idleTimer.schedule(after: options.keepaliveExpiry) }
    }

    /// Takes an active transfer off the multi handle and frees its slot and handle.
    func releaseConnection(_ t: Transfer) {
        if let easy = t.easy {
            if t.info(CURLINFO_NUM_CONNECTS) > 0 { counters.connectionsOpened.increment() } else if t.headSent { counters.connectionsReused.increment() }
            curl_multi_remove_handle(multi, easy)
        }
        if let easy = t.detachEasy() {
            // Reset handles are reused: no allocation of libcurl's per-handle state each time.
            if easyPool.count < Self.easyPoolSize {
                curl_easy_reset(easy)
                easyPool.append(easy)
            } else {
                curl_easy_cleanup(easy)
            }
        }
        admission.release(t)
        counters.active.decrement()
        if case .aborting = t.state, t.openedSocket != nil {
            // A cut transfer's socket is closed now; make sure its lease is back.
            ledger.reapClosedSockets()
        }
    }


    func fail(_ t: Transfer, _ error: TransferError) {
        remove(t)
        count(error.kind)
        // Never report synchronously from start(): the consumer does not know the ID yet.
        failuresToReport.append((t, error))
        soonTimer.schedule(after: 0)
    }

    func count(_ kind: TransferErrorKind) {
        counters.recordFailure(kind)
    }

    /// Reports failures found while starting transfers (see ``fail(_:_:)``).
    func reportFailures() {
        let failures = failuresToReport
        failuresToReport.removeAll()
        for (t, error) in failures { t.onEvent(.failed(error)) }
    }

}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}

func formatSeconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
}
