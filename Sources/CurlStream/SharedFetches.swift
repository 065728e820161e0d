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
        /// In `due`: it has something new to be handed.
        var isDue = false
    }

    private var readers: [TransferID: Reader] = [:]
    /// Readers with something new, in the order they got it: a fetch's event makes each of its
    /// readers due, a join or a resume only that reader.
    private var due = FIFO<TransferID>()
    /// Body bytes handed over in one pass at most: a thousand readers of a large cached prefix
    /// are served over several loop turns, not in one long stall.
    static let passBudget = 1 << 20
    private var deliverTimer: LoopTimer!
    private var expiryTimer: LoopTimer!
    /// A reader's head or body call is on the stack: it answers with its directive and must not
    /// call into the multi (as inside libcurl's callbacks for a transfer of its own).
    private(set) var inReaderCall = false

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
        // A joiner shares the fetch's deadlines (totalTimeout counts from the fetch's start):
        // past half of it, a stream starts a fetch of its own instead.
        let (key, how) = table.start(url: request.url, prefix: sharing.prefix, cacheFor: sharing.cacheFor,
                                     joinableFor: .seconds(multi.options.totalTimeout / 2), reader: id.raw, at: .now)
        readers[id] = Reader(fetch: key, consumer: consumer, tag: tag, how: how)
        switch how {
        case .started:
            multi.counters.sharedFetches.increment()
            bodies[key] = SharedBody(limit: sharing.prefix, counters: multi.counters)
            fetching[key] = multi.start(request, consumer: self, tag: key)
        case .joined:
            multi.counters.sharedJoins.increment()
            markDue(id)
        case .cached:
            multi.counters.sharedCacheHits.increment()
            markDue(id)
        }
    }

    /// Hands a paused reader the bytes it refused, and what came since, before returning (as
    /// ``CurlMulti/resume(_:)`` does for a transfer of its own); its verdict, if that is next,
    /// comes on the next loop turn, as a transfer's end does.
    func resume(_ id: TransferID) {
        guard let reader = readers[id] else { return }
        _ = table.update(reader.fetch, at: .now) { $0.resume(id.raw) }
        var budget = Self.passBudget
        deliver(to: id, verdicts: false, budget: &budget)
        markDue(id)
        cancelIfUnread(reader.fetch)
        // It may have finished: then its fetch may be done with.
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
            // A declared length sizes the bytes at once, unless it is of an encoded body.
            let head = table.fetch(key)?.head
            body.append(UnsafeRawBufferPointer(rebasing: bytes[..<keep]),
                        expected: head?.contentEncoding == nil ? head?.contentLength : nil)
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
        for id in table.fetch(key)?.order ?? [] { markDue(TransferID(raw: id)) }
        return directive
    }

    // MARK: - Handing bytes to readers

    private func markDue(_ id: TransferID) {
        guard readers[id]?.isDue == false else { return }
        readers[id]!.isDue = true
        due.append(id)
        if !deliverTimer.isScheduled { deliverTimer.schedule(after: 0) }
    }

    /// Serves due readers in order, within the pass's budget; the rest wait for the next turn.
    private func deliverDue() {
        var budget = Self.passBudget
        var fetches: Set<Int> = []
        while budget > 0, let id = due.popFirst() {
            guard readers[id] != nil else { continue }
            readers[id]!.isDue = false
            fetches.insert(readers[id]!.fetch)
            if !deliver(to: id, verdicts: true, budget: &budget) { markDue(id) }
        }
        if !due.isEmpty, !deliverTimer.isScheduled { deliverTimer.schedule(after: 0) }
        for key in fetches { cancelIfUnread(key) }
        retire()
    }

    /// Hands reader `id` what it is due, until it pauses, waits, has its verdict (unless
    /// `verdicts` is false: then it stops before it), or the budget is spent. Returns false
    /// when it stopped for the budget.
    @discardableResult
    private func deliver(to id: TransferID, verdicts: Bool, budget: inout Int) -> Bool {
        guard let key = readers[id]?.fetch, let body = bodies[key] else { return true }
        while let reader = readers[id], let delivery = table.fetch(key)?.next(id.raw) {
            let event: TransferEvent
            switch delivery {
            case .connecting:
                event = .connecting
            case .head(var head):
                head.shared = reader.how
                event = .head(head)
            case .body(let range):
                guard budget > 0 else { return false }
                budget -= range.count
                inReaderCall = true
                let answer = body.withBytes(range) { reader.consumer.transfer(reader.tag, .body($0)) }
                inReaderCall = false
                answered(id, key, delivery, answer)
                continue
            case .end(let summary):
                event = .end(summary)
            case .failed(let error):
                event = .failed(error)
            case .unsettled(let moreFollowed):
                event = .unsettled(moreFollowed: moreFollowed)
            }
            if delivery.isVerdict {
                guard verdicts else { return true }
                // Gone before it hears its verdict: the reader may start or cancel others then.
                readers[id] = nil
                _ = table.update(key, at: .now) { $0.delivered(id.raw, delivery, .proceed) }
                _ = reader.consumer.transfer(reader.tag, event)
                return true
            }
            inReaderCall = true
            let answer = reader.consumer.transfer(reader.tag, event)
            inReaderCall = false
            answered(id, key, delivery, answer)
        }
        return true
    }

    /// A reader answered a head or body (the answer to `connecting` is ignored, as a
    /// transfer ignores it): `finish` or `cancel` is its last word.
    private func answered(_ id: TransferID, _ key: Int, _ delivery: SharedFetch.Delivery, _ answer: TransferDirective) {
        _ = table.update(key, at: .now) { $0.delivered(id.raw, delivery, answer) }
        guard answer == .finish || answer == .cancel else { return }
        switch delivery {
        case .head, .body: readers[id] = nil
        case .connecting, .end, .failed, .unsettled: break
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
