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
        upstreams[i].contentEncoding = head.contentEncoding
        var charset = Charset.utf8
        if let name = Charset.named(in: head.contentType), !Charset.isUTF8(name),
           let transcoder = transcoders.transcoder(for: name) {
            upstreams[i].transcoder = transcoder
            charset = name
        }
        let ttfb = openedAt.duration(to: now).milliseconds
        // The upstream's time to first byte: a joined or cached read's is only its wait.
        if head.shared == nil || head.shared == .started { out.ttfbMilliseconds = ttfb }
        emit(.head, from: i, into: &out) { w in
            w.raw("{"); w.key("i"); w.int(i)
            w.comma(); w.key("status"); w.int(head.status)
            w.comma(); w.key("contentType"); w.string(head.contentType)
            w.comma(); w.key("contentEncoding"); w.string(head.contentEncoding)
            w.comma(); w.key("charset"); w.string(charset)
            w.comma(); w.key("ttfbMs"); w.milliseconds(ttfb)
            // A coalesced route's upstream: whether this stream started the fetch, joined it,
            // or read it from the cache.
            if let shared = head.shared { w.comma(); w.key("shared"); w.string(shared.rawValue) }
            w.raw("}")
        }
        return .proceed
    }

    /// Body bytes of upstream `i` (decoded of any content coding, in the body's charset).
    /// While the stream is paused they are refused (`pause`). Once the prefix is full the
    /// upstream ends (`finish`) when the answer to `truncated` is known: more bytes in this
    /// piece, or a Content-Length of the decoded body. Otherwise it asks the transfer whether
    /// the body ends within the same read (`settle`) and ends on the verdict.
    package mutating func bytes(_ i: Int, _ bytes: UnsafeRawBufferPointer, at now: Instant,
                        into out: inout SessionOutput) -> TransferDirective {
        self.now = now
        guard upstreams[i].isOpen, !isOver else { return .cancel }
        if upstreams[i].phase == .settling {
            // Transfers report no bytes while settling; were one to, the body went on.
            upstreams[i].dropHeld()
            end(i, truncated: true, into: &out)
            return .finish
        }
        if isPaused {
            upstreams[i].phase = .refused
            return .pause
        }
        _ = active(i, into: &out)
        let take = min(settings.prefix - upstreams[i].taken, bytes.count)
        upstreams[i].taken += take
        out.text.removeAll(keepingCapacity: true)
        upstreams[i].forwarded += upstreams[i].appendText(UnsafeRawBufferPointer(rebasing: bytes[..<take]), into: &out)
        if !out.text.isEmpty { emitChunk(from: i, into: &out) }
        guard upstreams[i].taken >= settings.prefix else { return .proceed }

        let truncated: Bool
        if bytes.count > take {
            truncated = true
        } else if let length = upstreams[i].contentLength, upstreams[i].contentEncoding == nil {
            truncated = length > Int64(upstreams[i].taken)
        } else {
            // Chunked, close-delimited or content-coded: the end may be in the same read. A
            // character the prefix cut stays held: it is U+FFFD if the body ends inside it.
            upstreams[i].phase = .settling
            return .settle
        }
        // The prefix ends inside a character: that character is not forwarded.
        upstreams[i].dropHeld()
        end(i, truncated: truncated, into: &out)
        return .finish
    }

    /// Upstream `i` answered `settle`, and its body did not end within the same read (more
    /// followed, or nothing more was there yet): it ends, truncated.
    package mutating func unsettled(_ i: Int, at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard upstreams[i].phase == .settling, !isOver else { return }
        upstreams[i].dropHeld()
        end(i, truncated: true, into: &out)
    }

    /// Upstream `i`'s body ended within the prefix (or, settling, right at it). A character
    /// left incomplete at the very end is ill-formed: it becomes U+FFFD.
    package mutating func ended(_ i: Int, at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard upstreams[i].isOpen, !isOver else { return }
        out.text.removeAll(keepingCapacity: true)
        let n = upstreams[i].flushHeld(into: &out.text)
        if n > 0 {
            upstreams[i].forwarded += n
            emitChunk(from: i, into: &out)
        }
        end(i, truncated: false, into: &out)
    }

    package mutating func failed(_ i: Int, kind: String, message: String, at now: Instant, into out: inout SessionOutput) {
        self.now = now
        guard upstreams[i].isOpen, !isOver else { return }
        if upstreams[i].phase == .settling {
            // The prefix is all forwarded; what failed lies beyond it, so more existed.
            upstreams[i].dropHeld()
            end(i, truncated: true, into: &out)
            return
        }
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
        let (url, ms) = (upstreams[i].url, openedAt.duration(to: now).milliseconds)
        emit(.error, from: i, into: &out) { w in
            w.raw("{"); w.key("i"); w.int(i)
            w.comma(); w.key("url"); w.string(url)
            w.comma(); w.key("kind"); w.string(kind)
            w.comma(); w.key("message"); w.string(message)
            // When it failed, as `end` says when it ended: how long a timeout or a lookup took.
            w.comma(); w.key("ms"); w.milliseconds(ms)
            w.raw("}")
        }
        failedCount += 1
        upstreamFinished(i, into: &out)
    }

    mutating func upstreamFinished(_ i: Int, into out: inout SessionOutput) {
        release(i)
        if settings.order == .sequential && i == turn { advanceTurn(into: &out) }
        if okCount + failedCount == upstreams.count { finish(into: &out) }
    }

    /// Upstream `i` is over: its transcoder goes back to the worker's pool.
    mutating func release(_ i: Int) {
        upstreams[i].phase = .finished
        if let t = upstreams[i].transcoder {
            upstreams[i].transcoder = nil
            transcoders.recycle(t)
        }
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
