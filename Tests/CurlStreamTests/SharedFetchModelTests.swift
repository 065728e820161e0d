import Foundation
import Testing
@testable import CurlStream

/// Random event sequences over one shared fetch: its transfer delivering a body in random
/// pieces (with or without a declared length, sometimes failing), readers joining at random
/// moments with random prefixes, pausing, resuming and leaving, and deliveries in random order.
/// Each reader answers as a fan-out stream does (take its prefix, then finish or settle). After
/// every step the books are checked; at the end every reader still there must have its verdict
/// (nobody hangs), and every verdict and byte must be what a transfer of its own would give.
@Suite struct SharedFetchModelTests {
    static let sequences = Int(ProcessInfo.processInfo.environment["SHARED_FETCH_SEQUENCES"] ?? "") ?? 400

    @Test func randomSequencesGiveEveryReaderItsOwnTransfersAnswer() {
        for seed in 0..<UInt64(Self.sequences) {
            var model = SharedFetchModel(seed: seed)
            model.run()
        }
    }
}

/// What one reader heard, answering as a fan-out stream would.
private struct ModelReader {
    let id: UInt64
    let prefix: Int
    /// Body bytes taken: ranges arrive contiguous from 0, so these are the body's first bytes.
    var taken = 0
    var heardConnecting = false
    var heardHead = false
    /// `end` (false), `unsettled` (true) or a finish on a known answer.
    var truncated: Bool?
    var failed = false
    /// It answered `settle` and waits for the verdict.
    var settling = false
    /// It answers its next body with `pause`.
    var pauseNext = false
    var left = false
    var isOver: Bool { truncated != nil || failed || left }
}

private struct SharedFetchModel {
    var rng: SplitMix64
    let seed: UInt64
    let bodyLength: Int
    /// The largest piece the transfer delivers.
    let scale: Int
    let declaresLength: Bool
    var fetch: SharedFetch
    var readers: [ModelReader] = []
    /// Body bytes the transfer has delivered; its state.
    var sent = 0
    var headSent = false
    var transferDone = false
    /// The transfer answered settle; its verdict is the next transfer step.
    var transferSettling = false
    var cancelled = false
    var nextID: UInt64 = 1

    init(seed: UInt64) {
        self.seed = seed
        var rng = SplitMix64(seed: seed)
        // Mostly small numbers, so that pieces end exactly at readers' prefixes (the settle
        // paths) as often as past them.
        scale = seed % 4 == 0 ? 700 : 8
        let length = Int.random(in: 0...(scale * 5), using: &rng)
        bodyLength = length
        declaresLength = Bool.random(using: &rng)
        fetch = SharedFetch(prefix: Int.random(in: 1...(scale * 4), using: &rng))
        self.rng = rng
    }

    mutating func run() {
        join()
        for _ in 0..<Int.random(in: 10...200, using: &rng) {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...3: transferStep()
            case 4: if fetch.outcome == nil, !cancelled { join() }
            case 5: resumeSome()
            case 6: if Int.random(in: 0..<4, using: &rng) == 0 { leaveSome() }
            default: deliverSome()
            }
            check()
        }
        // Quiescence: the transfer runs to its end, every reader is resumed and served.
        while !transferDone && !cancelled { transferStep(); check() }
        for _ in 0..<10_000 {
            for i in readers.indices where !readers[i].isOver { readers[i].pauseNext = false; fetch.resume(readers[i].id) }
            for i in readers.indices where !readers[i].isOver { deliver(i) }
            if readers.allSatisfy(\.isOver) { break }
        }
        check()
        for r in readers {
            #expect(r.isOver, "seed \(seed): reader \(r.id) (prefix \(r.prefix)) hangs; fetch \(fetch)")
        }
    }

    // MARK: - The fetch's transfer

    mutating func transferStep() {
        guard !transferDone, !cancelled else { return }
        if !fetch.connected { return fetch.connecting() }
        if !headSent {
            headSent = true
            return fetch.headArrived(TransferHead(status: 200, contentType: nil,
                                                  contentLength: declaresLength ? Int64(bodyLength) : nil))
        }
        if Int.random(in: 0..<40, using: &rng) == 0 {
            transferDone = true
            return fetch.failed(TransferError(kind: .reset, message: "reset"))
        }
        if transferSettling {
            // The verdict of the settle: whether the body ended with what was read.
            transferDone = true
            if sent == bodyLength {
                fetch.ended(summary)
            } else {
                fetch.unsettled(moreFollowed: true)
            }
            return
        }
        guard sent < bodyLength else {
            transferDone = true
            return fetch.ended(summary)
        }
        let n = Int.random(in: 1...min(scale, bodyLength - sent), using: &rng)
        let before = fetch.available
        let (keep, directive) = fetch.bytesArrived(n)
        #expect(keep == fetch.available - before && keep <= n, "seed \(seed): kept \(keep) of \(n)")
        sent += n
        switch directive {
        case .proceed: #expect(fetch.available < fetch.prefix, "seed \(seed): a full prefix goes on")
        case .finish: transferDone = true
        case .settle: transferSettling = true
        case .pause, .cancel: Issue.record("seed \(seed): the fetch answered \(directive)")
        }
    }

    var summary: TransferSummary {
        TransferSummary(bytesReceived: Int64(sent), wireBytes: Int64(sent), reusedConnection: false)
    }

    // MARK: - Readers

    mutating func join() {
        let prefix = Int.random(in: 1...fetch.prefix, using: &rng)
        guard fetch.canServe(prefix: prefix) else { return }
        fetch.join(nextID, prefix: prefix)
        readers.append(ModelReader(id: nextID, prefix: prefix))
        nextID += 1
    }

    mutating func resumeSome() {
        guard let i = readers.indices.randomElement(using: &rng), !readers[i].isOver else { return }
        readers[i].pauseNext = Bool.random(using: &rng)
        fetch.resume(readers[i].id)
    }

    mutating func leaveSome() {
        guard let i = readers.indices.randomElement(using: &rng), !readers[i].isOver else { return }
        readers[i].left = true
        let readBy = readers.contains { !$0.isOver }
        let unwanted = fetch.leave(readers[i].id)
        #expect(unwanted == (!readBy && fetch.outcome == nil), "seed \(seed): leave said \(unwanted)")
        if unwanted { cancelled = true }
    }

    mutating func deliverSome() {
        guard let i = readers.indices.randomElement(using: &rng) else { return }
        if Bool.random(using: &rng) { readers[i].pauseNext = Int.random(in: 0..<3, using: &rng) == 0 }
        deliver(i)
    }

    /// Hands reader `i` what it is due, answering as ``FanOutSession`` does.
    mutating func deliver(_ i: Int) {
        while !readers[i].isOver, let d = fetch.next(readers[i].id) {
            let answer = answer(i, d)
            fetch.delivered(readers[i].id, d, answer)
        }
    }

    mutating func answer(_ i: Int, _ d: SharedFetch.Delivery) -> TransferDirective {
        var r = readers[i]
        defer { readers[i] = r }
        let where_ = "seed \(seed): reader \(r.id) prefix \(r.prefix), fetch prefix \(fetch.prefix), body \(bodyLength)"
        switch d {
        case .connecting:
            #expect(!r.heardConnecting && !r.heardHead, "\(where_): connecting twice or late")
            r.heardConnecting = true
        case .head:
            #expect(!r.heardHead, "\(where_): two heads")
            r.heardHead = true
        case .body(let range):
            #expect(r.heardHead && !r.settling, "\(where_): body before the head or while settling")
            #expect(range.lowerBound == r.taken && !range.isEmpty && range.upperBound <= fetch.available,
                    "\(where_): body \(range) at \(r.taken)")
            if r.pauseNext {
                r.pauseNext = false
                return .pause
            }
            let take = min(r.prefix - r.taken, range.count)
            r.taken += take
            guard r.taken == r.prefix else { return .proceed }
            if range.count > take {
                r.truncated = true
                return .finish
            }
            if declaresLength {
                r.truncated = bodyLength > r.prefix
                return .finish
            }
            r.settling = true
            return .settle
        case .end:
            #expect(r.taken <= r.prefix, "\(where_): end past the prefix")
            r.truncated = false
        case .unsettled(let more):
            #expect(r.settling, "\(where_): a verdict it did not ask for")
            r.truncated = true
            // Unknown is "truncated" as for a transfer of its own; more followed must be true.
            #expect(bodyLength > r.prefix || !more, "\(where_): more followed a body that ended")
        case .failed:
            r.failed = true
        }
        return .proceed
    }

    // MARK: - The books

    func check() {
        let here = "seed \(seed): fetch prefix \(fetch.prefix), body \(bodyLength)"
        #expect(fetch.available <= fetch.prefix && fetch.available <= sent, "\(here): holds \(fetch.available)")
        #expect(fetch.available == min(sent, fetch.prefix), "\(here): holds \(fetch.available) of \(sent) sent")
        for r in readers {
            if r.isOver != (fetch.readers[r.id] == nil) {
                Issue.record("\(here): reader \(r.id) over \(r.isOver) but known \(fetch.readers[r.id] != nil)")
            }
            if let cursor = fetch.readers[r.id]?.cursor {
                #expect(cursor <= fetch.available, "\(here): reader \(r.id) cursor \(cursor)")
            }
            guard let truncated = r.truncated else {
                if r.failed {
                    guard case .failed = fetch.outcome else {
                        Issue.record("\(here): reader \(r.id) failed, fetch \(String(describing: fetch.outcome))")
                        continue
                    }
                }
                continue
            }
            if truncated {
                #expect(bodyLength >= r.prefix, "\(here): reader \(r.id) truncated a body of \(bodyLength)")
                #expect(r.taken == r.prefix, "\(here): reader \(r.id) truncated with \(r.taken)")
            } else {
                #expect(r.taken == min(bodyLength, r.prefix), "\(here): reader \(r.id) ended with \(r.taken) bytes")
                #expect(bodyLength <= r.prefix, "\(here): reader \(r.id) not truncated, body \(bodyLength)")
            }
        }
        #expect(Set(fetch.order).isSuperset(of: fetch.readers.keys) && fetch.order.count <= 2 * fetch.readers.count + 16,
                "\(here): order and readers disagree")
    }
}
