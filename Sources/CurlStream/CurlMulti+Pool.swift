import CCurl
import EventLoop

/// The pool's side of the shell: events from libcurl and other workers go to the
/// ``PoolStateMachine``; its actions run here, never inside a libcurl call.
extension CurlMulti {

    /// Runs the pool's actions (after a libcurl call has returned, or a consumer call changed
    /// the pool) and arms the pool timer for what still waits.
    func runPool() {
        runActions()
        armPoolTimer()
    }

    /// Runs the pool's actions in order; running one may add more, which run too.
    private func runActions() {
        var i = 0
        while i < actions.count {
            let action = actions[i]
            i += 1
            switch action {
            case .start(let id, _):
                if let t = transfers[id] { activate(t) }
            case .timedOut(let id):
                guard let t = transfers.removeValue(forKey: id) else { break }
                counters.queued.decrement()
                count(.pool)
                notices.append((t, .failed(TransferError(
                    kind: .pool,
                    message: "no connection slot for \(t.request.hostKey) within \(formatSeconds(options.poolTimeout)) "
                        + "(maxConnections \(budget.maxConnections), per host \(budget.maxConnectionsPerHost))"))))
            case .giveUpIdle(let host):
                if ledger.giveUp(host: host, isWatched: { sockets[$0] != nil }) {
                    counters.givenUp.increment()
                    pool.socketGone(host: host, &actions)
                } else {
                    pool.noIdleConnection(host: host, &actions)
                }
            case .poke(let worker):
                budget.poke(worker)
            case .scheduleHandover:
                handoverTimer.schedule(after: PoolStateMachine.handoverDelay.seconds)
            }
        }
        actions.removeAll(keepingCapacity: true)
    }

    /// Another worker asks this one to look at its pool again.
    func poked() {
        budget.pokeReceived(pool.worker)
        counters.pokes.increment()
        pool.poked(&actions)
        runPool()
        deliverNotices()
    }

    /// Arms the pool timer for the longest wait. Deadlines come in arrival order, so the timer
    /// is armed once for the oldest wait and moved on only when it fires.
    private func armPoolTimer() {
        guard !poolTimer.isScheduled, let deadline = pool.nextDeadline() else { return }
        poolTimer.schedule(after: max(0, ContinuousClock.now.duration(to: deadline).seconds))
    }

    func handOver() {
        pool.handover(&actions)
        runPool()
        deliverNotices()
    }

    func expireWaiting() {
        pool.expire(now: .now, &actions)
        runPool()
        deliverNotices()
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

    /// Puts a transfer the pool admitted on the multi handle.
    private func activate(_ t: Transfer) {
        counters.queued.decrement()
        counters.active.increment()
        t.state = .running
        guard attachHandle(to: t) else {
            fail(t, TransferError(kind: .internal, message: "could not set up a transfer for \(t.request.url)"))
            return
        }
        let rc = curl_multi_add_handle(multi, t.easy)
        guard rc == CURLM_OK else {
            fail(t, TransferError(kind: .internal, message: CurlMultiError(rc, call: "curl_multi_add_handle").description))
            return
        }
        // A transfer following a redirect heard `connecting` on its first hop.
        if t.redirect.followed == 0 { notices.append((t, .connecting)) }
    }

    // MARK: - From libcurl's callbacks (inside a libcurl call: actions wait for runPool)

    /// libcurl opened `fd` for a new connection of `t`; false refuses it (no lease).
    func socketOpened(_ fd: curl_socket_t, by t: Transfer) -> Bool {
        guard pool.socketOpening(t.id, host: t.host, &actions) else { return false }
        ledger.opened(fd, host: t.host, by: t.id)
        return true
    }

    /// `t`'s connection was reused: a lease it was admitted with returns.
    func reservationUnused(_ t: Transfer) {
        pool.reservationUnused(t.id, &actions)
    }

    /// `t`'s response head arrived: its HTTP version is counted, and tells the pool whether the
    /// host multiplexes (and that a new connection `t` opened is up).
    func headArrived(_ t: Transfer) {
        let version = t.info(CURLINFO_HTTP_VERSION)
        t.multiplexed = version == Int(CURL_HTTP_VERSION_2_0)
        counters.recordResponse(httpVersion: version)
        pool.protocolSeen(host: t.host, multiplexed: t.multiplexed, &actions)
        pool.responded(t.id, &actions)
    }

    /// `t` had an interim response or a redirect it follows: its host's protocol (and the new
    /// connection it opened) shows as for a final head, so a host whose every response redirects
    /// is probed once, not transfer by transfer.
    func protocolShown(by t: Transfer) {
        pool.protocolSeen(host: t.host, multiplexed: t.info(CURLINFO_HTTP_VERSION) == Int(CURL_HTTP_VERSION_2_0), &actions)
        pool.responded(t.id, &actions)
    }

    /// libcurl watches `fd` for `easy`: the socket is in use by that transfer.
    func socketInUse(_ fd: curl_socket_t, by easy: UnsafeMutableRawPointer?) {
        guard let easy else { return }
        var raw: UnsafeMutablePointer<CChar>?
        _ = CCurl_easy_getinfo_string(easy, CURLINFO_PRIVATE, &raw)
        guard let raw else { return }
        let t = Unmanaged<Transfer>.fromOpaque(UnsafeRawPointer(raw)).takeUnretainedValue()
        // A socket it did not open: libcurl reused a connection, so a lease it was admitted
        // with returns now rather than at its first header.
        guard ledger.using(fd, by: t.id) else { return }
        t.fds.append(fd)
        pool.reservationUnused(t.id, &actions)
    }
}
