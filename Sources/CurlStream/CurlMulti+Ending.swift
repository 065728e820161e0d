import CCurl
import EventLoop

/// How transfers end: every way out (done, error, cut, drained, cancelled, read timeout,
/// refused a lease) goes through ``CurlMulti/releaseConnection(_:requeue:)``, which tells the pool once.
extension CurlMulti {

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
            // Our open-socket callback refused it (no lease): not the upstream's fault. It waits
            // again, now for a lease of its own.
            releaseConnection(t, requeue: true)
            t.requeue()
            counters.queued.increment()
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

    /// Takes an active transfer off the multi handle, frees its handle, and tells the ledger
    /// and the pool: the one place a transfer's connection slot returns.
    func releaseConnection(_ t: Transfer, requeue: Bool = false) {
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
        counters.active.decrement()
        // Sockets of a connect cut short are closed by now, some without the close callback.
        ledger.released(by: t.id, fds: t.fds)
        if requeue {
            pool.requeue(t.id, now: .now, &actions)
        } else {
            pool.transferEnded(t.id, &actions)
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

    /// Reports failures found while starting transfers or waiting for a slot.
    func reportFailures() {
        let failures = failuresToReport
        failuresToReport.removeAll()
        for (t, error) in failures { t.onEvent(.failed(error)) }
    }

    // MARK: - Read timeout

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
}
