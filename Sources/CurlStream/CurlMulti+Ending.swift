import CCurl
import EventLoop

/// How transfers end: every way out (done, error, cut, drained, cancelled, refused a lease)
/// goes through ``CurlMulti/releaseConnection(_:requeue:)``, which tells the pool once, and
/// every end a consumer hears goes through ``CurlMulti/deliverNotices()``.
extension CurlMulti {

    func socketAction(_ fd: curl_socket_t, _ flags: Int32) {
        var running: Int32 = 0
        inCurl = true
        curl_multi_socket_action(multi, fd, flags, &running)
        inCurl = false
        collectFinished()
        removeCut()
        resolveSettles(timerRun: fd == CCurl_SOCKET_TIMEOUT)
        runPool()
        deliverNotices()
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
        switch t.state {
        case .running, .settling:
            break
        case .queued, .draining, .aborting:
            // Drained or cut: the consumer is done with it.
            remove(t)
            return
        }
        if t.leaseDenied, !t.headSent, result == CURLE_COULDNT_CONNECT {
            // Our open-socket callback refused it (no lease): not the upstream's fault. It waits
            // again, now for a lease of its own.
            releaseConnection(t, requeue: true)
            t.requeue()
            counters.queued.increment()
            return
        }
        if followRedirect(t, result) { return }
        let detail = t.errorDetail
        let reused = t.info(CURLINFO_NUM_CONNECTS) == 0
        if !t.headSent && result == CURLE_OK {
            // A body-less response: the head is all there is. The consumer may finish here.
            t.sendHead()
        }
        let end: TransferEvent
        if result == CURLE_OK {
            counters.succeeded.increment()
            end = .end(TransferSummary(bytesReceived: t.bytesReceived, wireBytes: t.wireBytes, reusedConnection: reused))
        } else {
            let error = TransferError(curl: result, detail: detail)
            count(error.kind)
            end = .failed(error)
        }
        remove(t)
        notices.append((t, end))
    }

    /// Takes off the HTTP/2 transfers cut during the libcurl call that just returned (an ended
    /// or cancelled one is gone already: `remove` ignores it).
    func removeCut() {
        guard !cutInCall.isEmpty else { return }
        for t in cutInCall { remove(t) }
        cutInCall.removeAll(keepingCapacity: true)
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
            // A response heard (a head sent, or a redirect's) on no new connection: a reused one.
            let heard = t.headSent || t.redirect.isHop
            if t.info(CURLINFO_NUM_CONNECTS) > 0 { counters.connectionsOpened.increment() } else if heard { counters.connectionsReused.increment() }
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
        settleResolveEntry(t)
        counters.active.decrement()
        // Sockets of a connect cut short are closed by now, some without the close callback.
        ledger.released(by: t.id, fds: t.fds)
        if requeue {
            pool.requeue(t.id, now: .now, &actions)
        } else {
            pool.transferEnded(t.id, &actions)
        }
    }

    /// A transfer that never reached libcurl (or waited too long for a slot) fails.
    func fail(_ t: Transfer, _ error: TransferError) {
        remove(t)
        count(error.kind)
        notices.append((t, .failed(error)))
    }

    func count(_ kind: TransferErrorKind) {
        counters.recordFailure(kind)
    }

    /// Makes sure notices queued by a consumer's call (which must not hear them from inside
    /// that call) are delivered on the next loop turn.
    func deliverNoticesSoon() {
        if !notices.isEmpty && !noticeTimer.isScheduled { noticeTimer.schedule(after: 0) }
    }

    /// Hands queued notices to their consumers, in order. Runs only from the loop (a socket
    /// action or the notice timer), never inside a consumer's call into this multi. A consumer
    /// may start or cancel transfers from here; what they queue is delivered in this pass too.
    func deliverNotices() {
        var i = 0
        while i < notices.count {
            let (t, event) = notices[i]
            i += 1
            guard t.reporting else { continue }
            switch event {
            case .connecting:
                guard case .running = t.state else { continue }
                _ = t.consumer.transfer(t.tag, event)
            case .end, .failed, .unsettled:
                t.reporting = false
                _ = t.consumer.transfer(t.tag, event)
            case .head, .body:
                continue
            }
        }
        notices.removeAll(keepingCapacity: true)
    }
}
