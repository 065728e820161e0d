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
/// too long, give up an idle connection, poke another worker) run once the libcurl call has
/// returned, since libcurl forbids calling it from its own callbacks.
///
/// Consumers never call in from those callbacks either: they answer a `head` or `body` event
/// with a ``TransferDirective`` (pause, finish, cancel), which the transfer applies by its return
/// value to libcurl, and they hear ends only once no libcurl call is on the stack. So nothing
/// here is re-entered and nothing needs deferring. The drain-or-cut policy of `finish` keeps
/// connections reusable.
public final class CurlMulti {
    public let loop: EventLoop
    public let options: TransferOptions
    /// The multi handle; replaced by a fresh one when the multi has been idle for
    /// `keepaliveExpiry` (see ``recycleIfIdle()``).
    var multi: UnsafeMutableRawPointer
    var timerEvent: OpaquePointer!
    var sockets: [curl_socket_t: OpaquePointer] = [:]

    var transfers: [TransferID: Transfer] = [:]
    /// HTTP/2 transfers cut inside a libcurl call: taken off once it returns (see
    /// ``Transfer/cutReturn(_:)``).
    var cutInCall: [Transfer] = []
    var pool: PoolStateMachine
    /// Actions the pool returned that have not run yet.
    var actions: [PoolAction] = []
    let ledger = ConnectionLedger()
    /// The header lines every request carries (``RequestHeaders``); libcurl reads the list
    /// without copying it, so it lives as long as the multi's easy handles.
    let requestHeaders: CurlStringList
    let budget: ConnectionBudget
    var poolTimer: LoopTimer!
    var idleTimer: LoopTimer!
    var handoverTimer: LoopTimer!
    /// Easy handles of finished transfers, reset, ready for the next ones.
    var easyPool: [UnsafeMutableRawPointer] = []
    static let easyPoolSize = 256
    var nextID: UInt64 = 1

    /// A libcurl call is on the stack: its callbacks may run, and nothing may call libcurl's
    /// multi functions (or this type's public API) until it returns.
    var inCurl = false
    /// What transfers report outside libcurl's callbacks (`connecting`, `end`, `failed`), in
    /// order, delivered once no libcurl call and no consumer call of ours is on the stack.
    var notices: [(Transfer, TransferEvent)] = []
    /// Transfers whose consumer answered `settle` in the current libcurl call (see
    /// ``resolveSettles(timerRun:)``).
    var settling: [Transfer] = []
    /// ``resume(_:)``'s call into libcurl is on the stack.
    var resuming = false
    /// libcurl's last timer request was "at once" and its timer has not fired yet: it has work
    /// due now, such as a transfer it stopped reading at its per-call read cap.
    var curlDueAtOnce = false
    var noticeTimer: LoopTimer!
    /// The fetches shared by transfers started with ``TransferSharing`` (made at the first).
    var shared: SharedFetches?

    /// What this multi has done, readable from any thread.
    public let counters = CurlMultiCounters()

    /// Resolves upstream host names on this loop (see CurlMulti+Resolve).
    let resolver: DNSResolver
    /// What this multi's libcurl DNS cache holds for each `host:port` (RESOLVE entries it was
    /// given), and whether a transfer has been seen to use it.
    var curlDNS: [String: (addresses: [String], confirmed: Bool)] = [:]
    /// Told of conditions worth a warning in the log (libcurl resolving a name by itself).
    public var onWarning: ((String) -> Void)?

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
        self.pool = PoolStateMachine(budget: budget, worker: worker, poolTimeout: .seconds(options.poolTimeout),
                                     maxStreamsPerConnection: options.maxStreamsPerConnection,
                                     probesProtocol: options.upstreamHTTP == .auto)
        guard let requestHeaders = RequestHeaders.list(for: options) else {
            throw CurlMultiError(CURLM_OUT_OF_MEMORY, call: "curl_slist_append")
        }
        self.requestHeaders = requestHeaders
        self.multi = try Self.makeMultiHandle(maxConnections: budget.maxConnections, options: options)
        // evdns sends a query again after half the lookup's deadline (at most 5 s, the system
        // resolver's default), so one lost packet does not fail it.
        self.resolver = DNSResolver(loop: loop, settings: options.resolver,
                                    attemptTimeout: min(5, options.connectTimeout / 2))

        let me = Unmanaged.passUnretained(self).toOpaque()
        timerEvent = event_new(loop.base, -1, 0, curlTimerFired, me)
        poolTimer = LoopTimer(loop: loop) { [unowned self] in self.expireWaiting() }
        noticeTimer = LoopTimer(loop: loop) { [unowned self] in self.deliverNotices() }
        idleTimer = LoopTimer(loop: loop) { [unowned self] in self.recycleIfIdle() }
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

    private static func makeMultiHandle(maxConnections: Int, options: TransferOptions) throws(CurlMultiError)
        -> UnsafeMutableRawPointer
    {
        guard let multi = curl_multi_init() else { throw CurlMultiError(CURLM_OUT_OF_MEMORY, call: "curl_multi_init") }
        // No libcurl connection limits: the pool's leases (taken in the open-socket callback)
        // enforce them exactly; libcurl's own would count dead connections still in its cache
        // and queue transfers out of our sight. Its cache counts connections in use too and
        // closes an idle one whenever it holds more than MAXCONNECTS, so it may hold every
        // connection the budget allows; the pool enforces maxKeepalive itself.
        var rc = CCurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, maxConnections)
        guard rc == CURLM_OK else {
            curl_multi_cleanup(multi)
            throw CurlMultiError(rc, call: "curl_multi_setopt(MAXCONNECTS)")
        }
        // At this many streams an HTTP/2 connection counts as full (as at the server's own
        // SETTINGS_MAX_CONCURRENT_STREAMS, if lower): libcurl then opens another connection for
        // the next transfer (lib/url.c ConnectionExists skips full ones), which takes a lease.
        rc = CCurl_multi_setopt_long(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, options.maxStreamsPerConnection)
        guard rc == CURLM_OK else {
            curl_multi_cleanup(multi)
            throw CurlMultiError(rc, call: "curl_multi_setopt(MAX_CONCURRENT_STREAMS)")
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
        curlDueAtOnce = false
    }

    /// libcurl closes an idle connection only when a later transfer looks for one, so an idle
    /// multi would keep expired connections (and their descriptors) forever. After
    /// `keepaliveExpiry` without transfers, the handle is replaced by a fresh one, which closes
    /// them all.
    func recycleIfIdle() {
        guard transfers.isEmpty, ledger.hasSockets else { return }
        guard let fresh = try? Self.makeMultiHandle(maxConnections: budget.maxConnections, options: options) else { return }
        closeMultiHandle()
        multi = fresh
        curlDNS.removeAll()
        attachCallbacks()
        runPool()
    }

    // MARK: - Consumer API (never from inside a consumer callback that libcurl is running)

    /// Starts fetching `request`; its events reach `consumer` on the loop, with `tag`, never
    /// before this returns. Its host is resolved first (at once when it is an IP literal, in the
    /// hosts file or cached), then it waits for a connection slot.
    public func start(_ request: TransferRequest, consumer: TransferConsumer, tag: Int) -> TransferID {
        enter()
        let id = newID()
        let transfer = Transfer(id: id, request: request, consumer: consumer, tag: tag)
        transfer.host = pool.host(request.hostKey)
        transfer.multi = self
        transfer.receiveBuffer = options.socketReceiveBuffer
        transfers[id] = transfer
        counters.started.increment()
        resolveThenQueue(transfer)
        runPool()
        deliverNoticesSoon()
        return id
    }

    /// Delivers the bytes `id`'s consumer refused with `pause` (libcurl may hand them over
    /// from inside this call) and reads its socket again.
    public func resume(_ id: TransferID) {
        enter()
        if let shared, shared.owns(id) { return shared.resume(id) }
        guard let t = transfers[id], t.pausedInCurl, let easy = t.easy else { return }
        t.pausedInCurl = false
        inCurl = true
        resuming = true
        curl_easy_pause(easy, CCurl_PAUSE_CONT)
        resuming = false
        inCurl = false
        // A transfer cut from inside the call is taken off now (libcurl only reports it done
        // from its next socket action).
        if case .aborting = t.state { remove(t) }
        removeCut()
        runPool()
        deliverNoticesSoon()
    }

    /// Stops `id` at once; the consumer hears nothing more. Its connection slot returns at once.
    public func cancel(_ id: TransferID) {
        enter()
        if let shared, shared.owns(id) { return shared.cancel(id) }
        guard let t = transfers[id] else { return }
        t.reporting = false
        if cancelLookup(t) {
            transfers[id] = nil
            return
        }
        switch t.state {
        case .queued:
            pool.cancelWaiting(id)
            counters.queued.decrement()
            transfers[id] = nil
        case .running, .settling, .draining, .aborting:
            t.cut()
            remove(t)
            runPool()
            deliverNoticesSoon()
        }
    }

    /// The checks of every public entry point: on the loop, and not from inside libcurl (a
    /// consumer answers libcurl's callbacks with a ``TransferDirective`` instead).
    @inline(__always)
    func enter() {
        loop.preconditionInEventLoop()
        precondition(!inCurl, "CurlMulti called from inside a libcurl callback")
        precondition(shared?.inReaderCall != true, "CurlMulti called from inside a shared transfer's head or body event")
    }

    func newID() -> TransferID {
        defer { nextID += 1 }
        return TransferID(raw: nextID)
    }

    /// Transfers that have not ended yet (active or queued).
    public var count: Int { transfers.count }
}
