/// The decisions of one upstream fetch that several consumers read (coalescing), with no I/O.
///
/// The fetch reads its body up to `prefix` bytes, which are held once, and learns how the body
/// ended, as a consumer with that prefix would. Each reader has a prefix of at most `prefix` and
/// a cursor into the held bytes; it is handed, in the order a transfer of its own would report
/// them, `connecting`, the head, the bytes from its cursor on, and one verdict, at its own pace:
/// a reader that answers `pause` keeps its place until it is resumed, and the fetch goes on. So
/// a slow reader never slows the fetch or the other readers, and one that joins late gets every
/// byte from the start.
///
/// It counts bytes and never holds them: its owner keeps the bytes, and hands a reader the range
/// ``next(_:)`` names.
package struct SharedFetch {
    /// How the fetch's body ended, once known.
    package enum Outcome: Equatable {
        /// The body ended within the prefix (or right at it).
        case ended(TransferSummary)
        /// The prefix is full and more body followed, or its end was not there to see.
        case truncated(moreFollowed: Bool)
        /// The transfer failed before its prefix was full.
        case failed(TransferError)
    }

    /// What a reader is handed next: the events a transfer reports, with body bytes as a range
    /// of the held bytes.
    package enum Delivery: Equatable {
        case connecting
        case head(TransferHead)
        case body(Range<Int>)
        case end(TransferSummary)
        case failed(TransferError)
        case unsettled(moreFollowed: Bool)
    }

    package struct Reader: Equatable {
        package enum State: Equatable {
            /// Takes whatever the fetch has beyond its cursor.
            case reading
            /// Answered `pause`: nothing more until it is resumed.
            case paused
            /// Answered `settle`: waits for the verdict alone.
            case settling
        }

        package let id: UInt64
        package internal(set) var state = State.reading
        package internal(set) var cursor = 0
        package internal(set) var sentConnecting = false
        package internal(set) var sentHead = false
    }

    /// The most body bytes handed over in one piece (libcurl's own largest write).
    package static let pieceSize = 16 * 1024

    /// Bytes of the body the fetch holds (and the most any reader may ask for).
    package let prefix: Int
    package private(set) var connected = false
    package private(set) var head: TransferHead?
    /// Body bytes held, from the start: at most `prefix`.
    package private(set) var available = 0
    package private(set) var outcome: Outcome?
    /// The fetch answered `settle`: its verdict comes with a later event.
    package private(set) var settling = false
    /// The readers still to get their verdict (one that has it, or left, is gone).
    package private(set) var readers: [UInt64: Reader] = [:]
    /// Their ids in the order they joined: the order they are served in. Ids of readers gone
    /// may remain (skip those not in `readers`); they are swept when they are most of it.
    package private(set) var order: [UInt64] = []

    package init(prefix: Int) {
        precondition(prefix > 0, "a fetch holds at least one byte")
        self.prefix = prefix
    }

    // MARK: - The fetch's transfer

    package mutating func connecting() {
        connected = true
    }

    package mutating func headArrived(_ head: TransferHead) {
        self.head = head
        connected = true
    }

    /// `count` body bytes arrived. Returns how many of them to keep (the rest lie beyond the
    /// prefix) and the transfer's answer: once the prefix is full it finishes when more bytes
    /// are in this piece or the length is known, and otherwise settles (the body may end
    /// within the same read).
    package mutating func bytesArrived(_ count: Int) -> (keep: Int, directive: TransferDirective) {
        guard outcome == nil, !settling else { return (0, .cancel) }
        let keep = min(prefix - available, count)
        available += keep
        guard available == prefix else { return (keep, .proceed) }
        if count > keep {
            outcome = .truncated(moreFollowed: true)
            return (keep, .finish)
        }
        if let head, head.contentEncoding == nil, let length = head.contentLength {
            outcome = length > Int64(prefix)
                ? .truncated(moreFollowed: true)
                : .ended(TransferSummary(bytesReceived: length, wireBytes: length, reusedConnection: false))
            return (keep, .finish)
        }
        settling = true
        return (keep, .settle)
    }

    package mutating func ended(_ summary: TransferSummary) {
        guard outcome == nil else { return }
        outcome = .ended(summary)
    }

    package mutating func unsettled(moreFollowed: Bool) {
        guard outcome == nil else { return }
        outcome = .truncated(moreFollowed: moreFollowed)
    }

    package mutating func failed(_ error: TransferError) {
        guard outcome == nil else { return }
        // Settling, the prefix is all there: what failed lay beyond it, so more existed.
        outcome = settling ? .truncated(moreFollowed: true) : .failed(error)
    }

    /// The fetch is over and its bytes may serve readers that start later: it completed
    /// without an error, with a status that is not a server error.
    package var isCacheable: Bool {
        switch outcome {
        case .ended, .truncated: (head?.status ?? 0) < 500
        case .failed, nil: false
        }
    }

    // MARK: - Readers

    /// Whether a reader needing `prefix` bytes may join: the fetch holds that many, and has not
    /// failed.
    package func canServe(prefix needed: Int) -> Bool {
        guard needed <= prefix else { return false }
        if case .failed = outcome { return false }
        return true
    }

    package mutating func join(_ id: UInt64, prefix needed: Int) {
        precondition(canServe(prefix: needed), "a reader joins a fetch that can serve it")
        // The reader's own prefix is its consumer's business (it answers finish or settle).
        readers[id] = Reader(id: id)
        order.append(id)
    }

    /// The reader leaves before its verdict. Returns whether the fetch is now read by no one
    /// while it still runs (its owner then cancels it).
    package mutating func leave(_ id: UInt64) -> Bool {
        remove(id)
        return readers.isEmpty && outcome == nil
    }

    /// A paused reader reads again.
    package mutating func resume(_ id: UInt64) {
        guard readers[id]?.state == .paused else { return }
        readers[id]?.state = .reading
    }

    /// What reader `id` is handed next, or nil while it has nothing due (paused, caught up with
    /// a fetch still running, or gone).
    package func next(_ id: UInt64) -> Delivery? {
        guard let reader = readers[id] else { return nil }
        switch reader.state {
        case .paused:
            return nil
        case .settling:
            // Its prefix is all handed over: did the body end there?
            if reader.cursor < available { return .unsettled(moreFollowed: true) }
            switch outcome {
            case .ended(let summary): return .end(summary)
            case .truncated(let more): return .unsettled(moreFollowed: more)
            case .failed(let error): return .failed(error)
            case nil:
                // The fetch's own verdict is pending (its prefix is this one); otherwise what
                // was read is all there is for now, and a transfer does not wait either.
                return settling ? nil : .unsettled(moreFollowed: false)
            }
        case .reading:
            if !reader.sentConnecting, connected { return .connecting }
            if !reader.sentHead, let head { return .head(head) }
            if reader.cursor < available {
                return .body(reader.cursor..<min(available, reader.cursor + Self.pieceSize))
            }
            switch outcome {
            case .ended(let summary): return .end(summary)
            case .failed(let error): return .failed(error)
            // The reader's prefix was full before this point (it answered finish or settle).
            case .truncated(let more): return .unsettled(moreFollowed: more)
            case nil: return nil
            }
        }
    }

    /// Reader `id` was handed `delivery` and answered `directive` (ignored for events other
    /// than the head and body, as a transfer ignores it).
    package mutating func delivered(_ id: UInt64, _ delivery: Delivery, _ directive: TransferDirective) {
        guard var reader = readers[id] else { return }
        switch delivery {
        case .connecting:
            reader.sentConnecting = true
        case .head:
            reader.sentConnecting = true
            reader.sentHead = true
        case .body(let range):
            switch directive {
            case .proceed: reader.cursor = range.upperBound
            case .pause: reader.state = .paused
            case .settle:
                reader.cursor = range.upperBound
                reader.state = .settling
            case .finish, .cancel: break
            }
        case .end, .failed, .unsettled:
            return remove(id)
        }
        switch delivery {
        case .head, .body:
            if directive == .finish || directive == .cancel { return remove(id) }
        default:
            break
        }
        readers[id] = reader
    }

    private mutating func remove(_ id: UInt64) {
        guard readers.removeValue(forKey: id) != nil else { return }
        if readers.isEmpty {
            order.removeAll()
        } else if order.count > 2 * readers.count + 16 {
            order.removeAll { readers[$0] == nil }
        }
    }
}
