import CurlStream
import EventLoop

/// The upstreams' events and what ends an upstream or the stream.
extension FanOutSession {
    // MARK: - The upstreams' side

    /// Upstream `i` has its connection slot: its read deadline starts.
    package mutating func connecting(_ i: Int, at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard upstreams[i].phase == .waiting else { return }
        upstreams[i].phase = .running
        upstreams[i].lastActivity = now
        arm(into: &out)
    }

    package mutating func head(_ i: Int, _ head: TransferHead, at now: Instant, into out: inout SessionOutput) -> TransferDirective {
        self.now = now
        guard active(i, into: &out) else { return .cancel }
        upstreams[i].contentLength = head.contentLength
        let ttfb = openedAt.duration(to: now).milliseconds
        out.ttfbMilliseconds = ttfb
        emit(.head, from: i, into: &out) { w in
            w.raw("{"); w.key("i"); w.int(i)
            w.comma(); w.key("status"); w.int(head.status)
            w.comma(); w.key("contentType"); w.string(head.contentType)
            w.comma(); w.key("ttfbMs"); w.milliseconds(ttfb)
            w.raw("}")
        }
        return .proceed
    }

    /// Body bytes of upstream `i`. While the stream is paused they are refused (`pause`); once
    /// the prefix is full the upstream ends and the answer is `finish`.
    package mutating func bytes(_ i: Int, _ bytes: UnsafeRawBufferPointer, at now: Instant,
                        into out: inout SessionOutput) -> TransferDirective {
        self.now = now
        guard upstreams[i].isOpen, !isOver else { return .cancel }
        if isPaused {
            upstreams[i].phase = .refused
            return .pause
        }
        _ = active(i, into: &out)
        let take = min(settings.prefix - upstreams[i].taken, bytes.count)
        upstreams[i].taken += take
        out.text.removeAll(keepingCapacity: true)
        upstreams[i].forwarded += upstreams[i].text.append(UnsafeRawBufferPointer(rebasing: bytes[..<take]),
                                                            final: false, into: &out.text)
        if !out.text.isEmpty { emitChunk(from: i, into: &out) }
        guard upstreams[i].taken >= settings.prefix else { return .proceed }

        // The prefix ends inside a character: that character is not forwarded.
        upstreams[i].text.dropHeld()
        let truncated: Bool
        if bytes.count > take {
            truncated = true
        } else if let length = upstreams[i].contentLength {
            truncated = length > Int64(upstreams[i].taken)
        } else {
            truncated = true  // unknown length: more may follow; we do not wait to find out
        }
        end(i, truncated: truncated, into: &out)
        return .finish
    }

    /// Upstream `i`'s body ended within the prefix. A character left incomplete at the very
    /// end is ill-formed: it becomes U+FFFD.
    package mutating func ended(_ i: Int, at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard upstreams[i].isOpen, !isOver else { return }
        out.text.removeAll(keepingCapacity: true)
        let n = upstreams[i].text.flushHeld(into: &out.text)
        if n > 0 {
            upstreams[i].forwarded += n
            emitChunk(from: i, into: &out)
        }
        end(i, truncated: false, into: &out)
    }

    package mutating func failed(_ i: Int, kind: String, message: String, at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard upstreams[i].isOpen, !isOver else { return }
        fail(i, kind: kind, message: message, into: &out)
    }

    // MARK: - Bookkeeping

    mutating func hold(_ name: SSEEventName, _ data: [UInt8], for i: Int) {
        upstreams[i].held.append((name, data))
    }

    mutating func takeHeld(_ i: Int) -> [(name: SSEEventName, data: [UInt8])] {
        defer { upstreams[i].held.removeAll() }
        return upstreams[i].held
    }

    /// Notes activity on an open upstream. One whose `connecting` has not arrived yet starts
    /// its read deadline here.
    mutating func active(_ i: Int, into out: inout SessionOutput) -> Bool {
        guard upstreams[i].isOpen, !isOver else { return false }
        let wasWaiting = upstreams[i].phase == .waiting
        upstreams[i].phase = .running
        upstreams[i].lastActivity = now
        if wasWaiting { arm(into: &out) }
        return true
    }

    mutating func end(_ i: Int, truncated: Bool, into out: inout SessionOutput) {
        let (bytes, ms) = (upstreams[i].forwarded, openedAt.duration(to: now).milliseconds)
        emit(.end, from: i, into: &out) { w in
            w.raw("{"); w.key("i"); w.int(i)
            w.comma(); w.key("bytes"); w.int(bytes)
            w.comma(); w.key("truncated"); w.bool(truncated)
            w.comma(); w.key("ms"); w.milliseconds(ms)
            w.raw("}")
        }
        okCount += 1
        upstreamFinished(i, into: &out)
    }

    mutating func fail(_ i: Int, kind: String, message: String, into out: inout SessionOutput) {
        let url = upstreams[i].url
        emit(.error, from: i, into: &out) { w in
            w.raw("{"); w.key("i"); w.int(i)
            w.comma(); w.key("url"); w.string(url)
            w.comma(); w.key("kind"); w.string(kind)
            w.comma(); w.key("message"); w.string(message)
            w.raw("}")
        }
        failedCount += 1
        upstreamFinished(i, into: &out)
    }

    mutating func upstreamFinished(_ i: Int, into out: inout SessionOutput) {
        upstreams[i].phase = .finished
        if settings.order == .sequential && i == turn { advanceTurn(into: &out) }
        if okCount + failedCount == upstreams.count { finish(into: &out) }
    }

    mutating func finish(into out: inout SessionOutput) {
        let (ok, failed, ms, shutdown) = (okCount, failedCount, openedAt.duration(to: now).milliseconds, shuttingDown)
        sse.event(.done, into: &out.frames) { w in
            w.raw("{"); w.key("ok"); w.int(ok)
            w.comma(); w.key("failed"); w.int(failed)
            w.comma(); w.key("ms"); w.milliseconds(ms)
            if shutdown { w.comma(); w.key("shutdown"); w.bool(true) }
            w.raw("}")
        }
        wrote()
        over(.done, into: &out)
    }

    mutating func over(_ end: End, into out: inout SessionOutput) {
        isOver = true
        wakeAt = nil
        out.end = end
    }

    /// Arms the owner's timer for the earliest deadline, if it is not armed that early already.
    /// Activity only moves deadlines later, so the timer may fire early; it then re-arms.
    mutating func arm(into out: inout SessionOutput) {
        guard !isOver else { return }
        var next = lastWrite + settings.heartbeat
        for u in upstreams where u.phase == .running {
            next = min(next, u.lastActivity + settings.readTimeout)
        }
        if let wakeAt, wakeAt <= next { return }
        wakeAt = next
        out.wake = next
    }
}
