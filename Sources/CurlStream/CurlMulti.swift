import CCurl
import CEvent
import EventLoop

/// libcurl's global state, initialised once per process before the first multi handle.
private let curlGlobal: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

/// One libcurl multi handle driven by one ``EventLoop`` through the multi-socket API: the thin
/// I/O shell around a ``PoolStateMachine``, in the shape of curl's hiperfifo.c.
///
/// libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
/// (CURLMOPT_TIMERFUNCTION); libevent watches them; each readiness or timeout goes back to
/// `curl_multi_socket_action`, after which finished transfers are collected. What libcurl and
/// the consumer report (a transfer wants a connection, a socket opens or closes, a transfer
/// ends) goes to the pool as events; the pool's actions (start a transfer, fail one that waited
/// too long, give up an idle connection, poke another worker) run once the outermost libcurl
/// call has returned, since libcurl forbids calling it from its own callbacks. On top of that
/// this type keeps a read timeout and the drain-or-cut policy that keeps connections reusable.
public final class CurlMulti {
    public let loop: EventLoop
    public let options: TransferOptions
    /// The multi handle; replaced by a fresh one when the multi has been idle for
    /// `keepaliveExpiry` (see ``recycleIfIdle()``).
    var multi: UnsafeMutableRawPointer
    var timerEvent: OpaquePointer!
    var sockets: [curl_socket_t: OpaquePointer] = [:]

    var transfers: [TransferID: Transfer] = [:]
    var pool: PoolStateMachine
    /// Actions the pool returned that have not run yet.
    var actions: [PoolAction] = []
    let ledger = ConnectionLedger()
    let budget: ConnectionBudget
    var poolTimer: LoopTimer!
    var soonTimer: LoopTimer!
    var idleTimer: LoopTimer!
    var readSweep: LoopTimer!
    var handoverTimer: LoopTimer!
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

    /// - Parameters:
    ///   - budget: the process-wide connection limits this multi shares with other workers'
    ///     multis.
    ///   - worker: this multi's index among the budget's workers.
    public init(loop: EventLoop, options: TransferOptions, budget: ConnectionBudget, worker: Int = 0)
        throws(CurlMultiError)
    {
        loop.preconditionInEventLoop()
        precondition(curlGlobal == CURLE_OK, "curl_global_init failed")
        self.loop = loop
        self.options = options
        self.budget = budget
        self.pool = PoolStateMachine(budget: budget, worker: worker, poolTimeout: .seconds(options.poolTimeout))
        self.multi = try Self.makeMultiHandle(maxConnections: budget.maxConnections)

        let me = Unmanaged.passUnretained(self).toOpaque()
        timerEvent = event_new(loop.base, -1, 0, curlTimerFired, me)
        poolTimer = LoopTimer(loop: loop) { [unowned self] in self.expireWaiting() }
        soonTimer = LoopTimer(loop: loop) { [unowned self] in self.reportFailures() }
        idleTimer = LoopTimer(loop: loop) { [unowned self] in self.recycleIfIdle() }
        readSweep = LoopTimer(loop: loop) { [unowned self] in self.sweepReadTimeouts() }
        handoverTimer = LoopTimer(loop: loop) { [unowned self] in self.handOver() }
        attachCallbacks()
        ledger.onGone = { [unowned self] host in self.pool.socketGone(host: host, &self.actions) }
        let target = LoopBound(self, loop: loop)
        budget.connect(worker: worker) { target.execute { $0.poked() } }
    }

    deinit {
        budget.disconnect(worker: pool.worker)
        ledger.onGone = nil
        for transfer in transfers.values where transfer.isActive {
            curl_multi_remove_handle(multi, transfer.easy)
            transfer.detachEasy().map { curl_easy_cleanup($0) }
        }
        for easy in easyPool { curl_easy_cleanup(easy) }
        transfers.removeAll()
        closeMultiHandle()
        event_free(timerEvent)
        pool.close()
    }

    private static func makeMultiHandle(maxConnections: Int) throws(CurlMultiError) -> UnsafeMutableRawPointer {
        guard let multi = curl_multi_init() else { throw CurlMultiError(CURLM_OUT_OF_MEMORY, call: "curl_multi_init") }
        // No libcurl connection limits: the pool's leases (taken in the open-socket callback)
        // enforce them exactly; libcurl's own would count dead connections still in its cache
        // and queue transfers out of our sight. Its cache counts connections in use too and
        // closes an idle one whenever it holds more than MAXCONNECTS, so it may hold every
        // connection the budget allows; the pool enforces maxKeepalive itself.
        let rc = CCurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maxConnections)
        guard rc == CURLM_OK else {
            curl_multi_cleanup(multi)
            throw CurlMultiError(rc, call: "curl_multi_setopt(MAXCONNECTS)")
        }
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
        guard let fresh = try? Self.makeMultiHandle(maxConnections: budget.maxConnections) else { return }
        closeMultiHandle()
        multi = fresh
        attachCallbacks()
        settle()
    }

    // MARK: - Consumer API

    /// Starts fetching `request`. Events reach `onEvent` on the loop, never before this returns.
    public func start(_ request: TransferRequest, onEvent: @escaping (TransferEvent) -> Void) -> TransferID {
        loop.assertInEventLoop()
        let id = TransferID(raw: nextID)
        nextID += 1
        let transfer = Transfer(id: id, request: request, onEvent: onEvent)
        transfer.host = pool.host(request.hostKey)
        transfer.multi = self
        transfer.receiveBuffer = options.socketReceiveBuffer
        transfers[id] = transfer
        counters.started.increment()
        counters.queued.increment()
        pool.request(id, host: transfer.host, now: .now, &actions)
        settle()
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

    /// Stops `id` at once; the consumer hears nothing more. Its connection slot returns at once.
    public func cancel(_ id: TransferID) {
        loop.assertInEventLoop()
        guard let t = transfers[id] else { return }
        switch t.state {
        case .queued:
            pool.cancelWaiting(id)
            counters.queued.decrement()
            transfers[id] = nil
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
}
