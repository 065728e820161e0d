import EventLoop

/// The loop-side owner of a multi's shared fetches (coalescing): the thin I/O shell around a
/// ``SharedFetchTable``.
///
/// To its readers it is the transfer layer: a shared transfer reports what a transfer of its own
/// would, and takes the same answers. To the multi it is the consumer of each shared fetch's
/// one real transfer. The fetch's bytes go into its ``SharedBody`` as libcurl delivers them;
/// readers are handed them later, on the loop, never inside libcurl's callbacks and never
/// inside a reader's own call into the multi, each from its own cursor and at its own pace.
final class SharedFetches: TransferConsumer {
    private unowned(unsafe) let multi: CurlMulti
    private var table = SharedFetchTable()
    /// The held bytes of each fetch in the table.
    private var bodies: [Int: SharedBody] = [:]
    /// The transfer of each fetch whose outcome is still to come.
    private var fetching: [Int: TransferID] = [:]

    private struct Reader {
        let fetch: Int
        unowned let consumer: TransferConsumer
        let tag: Int
        let how: SharedFetchStart
    }

    private var readers: [TransferID: Reader] = [:]
    /// Fetches with something new for their readers, in the order they got it.
    private var due: [Int] = []
    private var deliverTimer: LoopTimer!
    private var expiryTimer: LoopTimer!

    init(multi: CurlMulti) {
        self.multi = multi
        deliverTimer = LoopTimer(loop: multi.loop) { [unowned self] in self.deliverDue() }
        expiryTimer = LoopTimer(loop: multi.loop) { [unowned self] in self.retire() }
    }

    /// Whether `id` is a shared transfer (a reader), not one of the multi's own.
    func owns(_ id: TransferID) -> Bool {
        readers[id] != nil
    }

    // MARK: - Readers (the multi's public API, outside libcurl's calls)

    func start(_ request: TransferRequest, sharing: TransferSharing, consumer: TransferConsumer, tag: Int, id: TransferID) {
        let (key, how) = table.start(url: request.url, prefix: sharing.prefix, cacheFor: sharing.cacheFor,
                                     reader: id.raw, at: .now)
        readers[id] = Reader(fetch: key, consumer: consumer, tag: tag, how: how)
        switch how {
        case .started:
            multi.counters.sharedFetches.increment()
            bodies[key] = SharedBody(limit: sharing.prefix, counters: multi.counters)
            fetching[key] = multi.start(request, consumer: self, tag: key)
        case .joined:
            multi.counters.sharedJoins.increment()
            markDue(key)
        case .cached:
            multi.counters.sharedCacheHits.increment()
            markDue(key)
        }
    }

    /// Hands a paused reader what it refused, and what came since, before returning (as
    /// ``CurlMulti/resume(_:)`` does for a transfer of its own).
    func resume(_ id: TransferID) {
        guard let reader = readers[id] else { return }
        _ = table.update(reader.fetch, at: .now) { $0.resume(id.raw) }
        if let body = bodies[reader.fetch] { deliver(to: id, of: reader.fetch, from: body) }
        cancelIfUnread(reader.fetch)
        retire()
    }

    /// The reader hears nothing more; the last reader of a running fetch cancels its transfer.
    func cancel(_ id: TransferID) {
        guard let reader = readers.removeValue(forKey: id) else { return }
        if table.leave(id.raw, of: reader.fetch) { stop(reader.fetch) }
        retire()
    }

    // MARK: - The fetches' transfers (head and body inside libcurl's callbacks)

    func transfer(_ key: Int, _ event: TransferEvent) -> TransferDirective {
        let now = ContinuousClock.now
        var directive = TransferDirective.proceed
        switch event {
        case .connecting:
            _ = table.update(key, at: now) { $0.connecting() }
        case .head(let head):
            guard table.update(key, at: now, { $0.headArrived(head) }) != nil else { return .cancel }
        case .body(let bytes):
            guard let body = bodies[key],
                  let (keep, answer) = table.update(key, at: now, { $0.bytesArrived(bytes.count) })
            else { return .cancel }
            body.append(UnsafeRawBufferPointer(rebasing: bytes[..<keep]), expected: table.fetch(key)?.head?.contentLength)
            directive = answer
        case .end(let summary):
            fetching[key] = nil
            _ = table.update(key, at: now) { $0.ended(summary) }
        case .failed(let error):
            fetching[key] = nil
            _ = table.update(key, at: now) { $0.failed(error) }
        case .unsettled(let moreFollowed):
            fetching[key] = nil
            _ = table.update(key, at: now) { $0.unsettled(moreFollowed: moreFollowed) }
        }
        if directive == .finish || directive == .cancel { fetching[key] = nil }
        markDue(key)
        return directive
    }

    // MARK: - Handing bytes to readers

    private func markDue(_ key: Int) {
        if !due.contains(key) { due.append(key) }
        if !deliverTimer.isScheduled { deliverTimer.schedule(after: 0) }
    }

    private func deliverDue() {
        while !due.isEmpty {
            let key = due.removeFirst()
            // The order alone is kept across the pass: a copy of the whole fetch would make
            // every reader's step copy the others' books.
            guard let body = bodies[key], let order = table.fetch(key)?.order else { continue }
            for id in order { deliver(to: TransferID(raw: id), of: key, from: body) }
            cancelIfUnread(key)
        }
        retire()
    }

    /// Hands reader `id` everything it is due, until it pauses, waits or has its verdict.
    private func deliver(to id: TransferID, of key: Int, from body: SharedBody) {
        while let reader = readers[id], let delivery = table.fetch(key)?.next(id.raw) {
            let event: TransferEvent
            switch delivery {
            case .connecting:
                event = .connecting
            case .head(var head):
                head.shared = reader.how
                event = .head(head)
            case .body(let range):
                let answer = body.withBytes(range) { reader.consumer.transfer(reader.tag, .body($0)) }
                _ = table.update(key, at: .now) { $0.delivered(id.raw, delivery, answer) }
                if answer == .finish || answer == .cancel { readers[id] = nil }
                continue
            case .end(let summary):
                event = .end(summary)
            case .failed(let error):
                event = .failed(error)
            case .unsettled(let moreFollowed):
                event = .unsettled(moreFollowed: moreFollowed)
            }
            let final = delivery.isVerdict
            if final {
                // Gone before it hears its verdict: the reader may start or cancel others then.
                readers[id] = nil
                _ = table.update(key, at: .now) { $0.delivered(id.raw, delivery, .proceed) }
            }
            let answer = reader.consumer.transfer(reader.tag, event)
            guard !final else { continue }
            _ = table.update(key, at: .now) { $0.delivered(id.raw, delivery, answer) }
            if answer == .finish || answer == .cancel { readers[id] = nil }
        }
    }

    /// A running fetch whose readers all have what they wanted (a shorter prefix than its
    /// starter's, who left) is read by no one: it stops, as when its last reader leaves.
    private func cancelIfUnread(_ key: Int) {
        guard let fetch = table.fetch(key), fetch.readers.isEmpty, fetch.outcome == nil else { return }
        table.forget(key)
        stop(key)
    }

    /// Frees a forgotten fetch's bytes and cancels its transfer.
    private func stop(_ key: Int) {
        bodies[key] = nil
        if let transfer = fetching.removeValue(forKey: key) { multi.cancel(transfer) }
    }

    /// Frees the fetches that can serve no one any more, and arms the timer for the next.
    private func retire() {
        let now = ContinuousClock.now
        for key in table.retire(at: now) { bodies[key] = nil }
        guard let next = table.nextExpiry else { return expiryTimer.cancel() }
        expiryTimer.schedule(after: max(0, now.duration(to: next).seconds))
    }
}

extension SharedFetch.Delivery {
    /// The reader's last event.
    var isVerdict: Bool {
        switch self {
        case .end, .failed, .unsettled: true
        case .connecting, .head, .body: false
        }
    }
}
