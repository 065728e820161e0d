import CurlStream
import StreamProxy

/// Where a ``SessionModel`` takes its decisions from: a seeded generator in the model test,
/// the fuzzer's input bytes in the fuzz target.
package protocol ChoiceSource {
    /// A number in `0..<bound` (`bound` > 0).
    mutating func next(_ bound: Int) -> Int
    /// No more choices worth making (a fuzzer's input has run out).
    var isExhausted: Bool { get }
}

extension ChoiceSource {
    package var isExhausted: Bool { false }
}

/// A violated invariant: what went wrong and the events that led there.
package struct SessionModelFailure: Error, CustomStringConvertible {
    package let description: String
}

/// Drives a ``FanOutSession`` with random but legal event sequences, playing the transfer layer
/// as libcurl does (refused bytes come back after a resume, nothing is heard from an upstream
/// after it was finished, cancelled or stopped), and checks the stream's invariants after
/// every step:
/// - what was written always parses as well-formed SSE, and every event's data is JSON;
/// - every upstream ends exactly once (`end` or `error`), and `done` comes last, once;
/// - no upstream forwards more than its prefix;
/// - `truncated` is false only for a body that ended within the prefix, and true for one that
///   did not, unless the transfer layer could not tell (a `settle` answered with "nothing more
///   was on the socket", a failure, or shutdown);
/// - commands only start each upstream once and only stop open ones.
package struct SessionModel {
    package var h: SessionHarness
    package let upstreams: Int
    package let prefix: Int
    /// Per upstream: what the transfer layer still has to deliver, and whether it still reports.
    private var bodies: [[UInt8]]
    private var delivered: [Int]
    private var refused: [[UInt8]?]
    private var reporting: [Bool]
    private var headSent: [Bool]
    /// Answered `settle`: the transfer layer owes a verdict, and delivers no more bytes.
    private var settling: [Bool]
    /// Upstreams whose verdict was "not known to end": `truncated` may be true for them.
    private var uncertain = Set<Int>()
    /// Upstreams whose head named a charset other than UTF-8.
    private var converted = Set<Int>()
    private var stopped: Set<Int> = []
    /// What the checks have seen so far.
    private var checked = 0
    private var ended = Set<Int>()
    private var forwarded: [Int]
    private var sawDone = false
    package private(set) var steps: [String] = []

    package init(upstreams: Int, prefix: Int, order: StreamOrder, bodies: [[UInt8]]) {
        var settings = SessionHarness.defaultSettings
        settings.prefix = prefix
        settings.order = order
        settings.streamBuffer = 64
        settings.heartbeat = .seconds(3)
        settings.readTimeout = .seconds(2)
        self.h = SessionHarness(upstreams: upstreams, settings: settings)
        self.upstreams = upstreams
        self.prefix = prefix
        self.bodies = bodies
        self.delivered = Array(repeating: 0, count: upstreams)
        self.refused = Array(repeating: nil, count: upstreams)
        self.reporting = Array(repeating: true, count: upstreams)
        self.headSent = Array(repeating: false, count: upstreams)
        self.settling = Array(repeating: false, count: upstreams)
        self.forwarded = Array(repeating: 0, count: upstreams)
    }

    /// Runs `count` steps chosen by `choices`, checking the invariants after each.
    package mutating func run(steps count: Int, choices: inout some ChoiceSource) throws(SessionModelFailure) {
        h.open()
        steps.append("open")
        try check()
        for _ in 0..<count {
            guard h.end == nil, !choices.isExhausted else { break }
            step(&choices)
            try check()
        }
        // However the sequence went, the stream can always be brought to an end. An upstream
        // still settling then ends truncated: whether more followed is not known.
        if h.end == nil {
            for s in 0..<upstreams where settling[s] { uncertain.insert(s) }
            h.shutdown()
            steps.append("shutdown")
            try check()
        }
        try checkFinal()
    }

    private mutating func step(_ c: inout some ChoiceSource) {
        let i = c.next(max(1, upstreams))
        switch c.next(12) {
        case 0:
            guard upstreams > 0 else { return }
            h.connecting(i)
            steps.append("connecting \(i)")
        case 1, 2, 3, 4:
            deliver(i, c.next(7) + 1, &c)
        case 5:
            guard upstreams > 0, reporting[i], refused[i] == nil else { return }
            if settling[i] { return verdict(i, &c) }
            reporting[i] = false
            if c.next(2) == 0 {
                // The body ends here: it was what has been delivered.
                bodies[i].removeSubrange(delivered[i]...)
                h.ended(i)
                steps.append("end \(i)")
            } else {
                h.failed(i)
                steps.append("failed \(i)")
            }
        case 6: h.queued = c.next(3) == 0 ? 1_000 : 0; steps.append("queued \(h.queued)")
        case 7:
            let resumed = h.drained()
            steps.append("drained, resumed \(resumed)")
            for r in resumed {
                guard let bytes = refused[r] else { continue }
                refused[r] = nil
                send(r, bytes)
            }
        case 8: h.advance(.milliseconds(c.next(2_500))); steps.append("advance")
        case 9: h.fireTimer(); steps.append("timer")
        case 10: if c.next(8) == 0 { h.clientGone(); steps.append("client gone") }
        default:
            if c.next(8) == 0 {
                for s in 0..<upstreams where settling[s] { uncertain.insert(s) }
                h.shutdown()
                steps.append("shutdown")
            }
        }
        for case .stop(let s) in h.commands where !stopped.contains(s) {
            stopped.insert(s)
            reporting[s] = false
            settling[s] = false
        }
    }

    /// The transfer layer's answer to `settle`: the body ended in the same read (only if it
    /// had no more bytes), more followed, nothing more was there yet, or the transfer failed.
    private mutating func verdict(_ i: Int, _ c: inout some ChoiceSource) {
        settling[i] = false
        reporting[i] = false
        let atEnd = delivered[i] == bodies[i].count
        switch c.next(3) {
        case 0 where atEnd:
            h.ended(i)
            steps.append("settled: end \(i)")
        case 1:
            if atEnd { uncertain.insert(i) }
            h.failed(i)
            steps.append("settled: failed \(i)")
        default:
            if atEnd { uncertain.insert(i) }
            h.unsettled(i)
            steps.append("settled: unsettled \(i)")
        }
    }

    /// The transfer layer hands upstream `i` its next `n` body bytes (a head first: an
    /// identity body with its length or none, or a content-coded one, whose length is the
    /// wire's and says nothing of the decoded body).
    private mutating func deliver(_ i: Int, _ n: Int, _ c: inout some ChoiceSource) {
        guard upstreams > 0, reporting[i], refused[i] == nil, !settling[i] else { return }
        if !headSent[i] {
            headSent[i] = true
            steps.append("head \(i)")
            // A charset other than UTF-8 converts through iconv: its text may be longer than its bytes.
            let charsets = ["", "; charset=ISO-8859-1", "; charset=Shift_JIS"]
            let k = c.next(charsets.count)
            if k > 0 { converted.insert(i) }
            let type = "text/plain" + charsets[k]
            let directive: TransferDirective
            switch c.next(3) {
            case 0: directive = h.head(i, type: type, length: Int64(bodies[i].count))
            case 1: directive = h.head(i, type: type, length: nil)
            default: directive = h.head(i, type: type, length: Int64(c.next(40)), encoding: "gzip")
            }
            if directive != .proceed { reporting[i] = false }
            return
        }
        let start = delivered[i]
        guard start < bodies[i].count else { return }
        let piece = Array(bodies[i][start..<min(bodies[i].count, start + n)])
        delivered[i] += piece.count
        send(i, piece)
    }

    private mutating func send(_ i: Int, _ piece: [UInt8]) {
        steps.append("bytes \(i) \(piece)")
        switch h.bytes(i, piece) {
        case .proceed: break
        case .pause: refused[i] = piece  // libcurl keeps them and delivers them again
        case .settle: settling[i] = true
        case .finish, .cancel: reporting[i] = false
        }
    }

    private func fail(_ what: String) -> SessionModelFailure {
        SessionModelFailure(description: "\(what)\nsteps:\n" + steps.suffix(40).joined(separator: "\n"))
    }

    /// Checks the events written since the last check (each step's are checked once).
    private mutating func check() throws(SessionModelFailure) {
        guard h.wire.isEmpty || h.wire.suffix(2).elementsEqual([0x0A, 0x0A]) else {
            throw fail("output ends inside an SSE block")
        }
        let events = h.events
        guard events.first?.event == "open" else { throw fail("the first event is not open") }
        while checked < events.count {
            let n = checked
            let e = events[n]
            checked += 1
            guard !sawDone else { throw fail("\(e.event) after done") }
            guard let json = try? e.json() else { throw fail("event \(n) has no JSON data: \(e.data)") }
            if e.event == "done" {
                guard e.id == "done" else { throw fail("done has id \(e.id ?? "nil")") }
                guard ended.count == upstreams else { throw fail("done before every upstream ended") }
                sawDone = true
                continue
            }
            guard e.id == String(n + 1) else { throw fail("event \(n) has id \(e.id ?? "nil")") }
            guard e.event != "open" else { continue }
            guard let i = json.int("i"), (0..<upstreams).contains(i) else { throw fail("event \(n) has no upstream") }
            guard !ended.contains(i) else { throw fail("upstream \(i) has \(e.event) after its end") }
            switch e.event {
            case "end", "error": ended.insert(i)
            case "chunk": forwarded[i] += json.string("text")?.utf8.count ?? 0
            default: break
            }
            if e.event == "end", let bytes = json.int("bytes"), bytes > prefix { throw fail("upstream \(i) ended with \(bytes) bytes") }
            if e.event == "end", let truncated = json.bool("truncated") {
                let longer = bodies[i].count > prefix
                if !truncated && longer { throw fail("upstream \(i) not truncated, though its body is longer than the prefix") }
                if truncated && !longer && !uncertain.contains(i) {
                    throw fail("upstream \(i) truncated, though its body ended within the prefix")
                }
            }
            if isValidUTF8(i) && !converted.contains(i) && forwarded[i] > prefix {
                throw fail("upstream \(i) forwarded \(forwarded[i]) bytes of text, prefix \(prefix)")
            }
        }
        let starts = h.commands.filter { if case .start = $0 { true } else { false } }
        let expected = (0..<upstreams).map { FanOutSession.Command.start($0) }
        guard starts == expected else { throw fail("starts: \(starts)") }
    }

    private func checkFinal() throws(SessionModelFailure) {
        guard h.end != nil else { throw fail("the stream never ended") }
        if h.end == .done {
            guard h.names.last == "done" else { throw fail("ended without done") }
        }
    }

    private func isValidUTF8(_ i: Int) -> Bool {
        String(validating: bodies[i], as: UTF8.self) != nil
    }
}
