import StreamProxy
import StreamTestSupport

/// The fan-out session fed event sequences read from the input, through the same model as
/// `FanOutSessionModelTests` (the transfer layer played as libcurl plays it), every invariant
/// checked after every step: well-formed SSE, ids in write order, each upstream ending exactly
/// once, `done` last and once, no upstream forwarding more than its prefix, `truncated` exact
/// (heads with charsets and content codings, `settle` verdicts played as the transfer layer does).
///
/// The input is read as choices: the number of upstreams, the prefix, the order, each body's
/// bytes, then one event per few bytes until the input runs out.
enum FanOutSessionFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        var choices = InputChoices(data)
        let upstreams = choices.next(6)
        let prefix = 1 + choices.next(32)
        let order: StreamOrder = choices.next(2) == 0 ? .completion : .sequential
        let bodies = (0..<upstreams).map { _ in (0..<choices.next(48)).map { _ in UInt8(choices.next(256)) } }
        var model = SessionModel(upstreams: upstreams, prefix: prefix, order: order, bodies: bodies)
        do {
            try model.run(steps: 2_000, choices: &choices)
        } catch {
            check(false, error.description)
        }
    }
}

/// Choices taken from the fuzzer's bytes: one byte each (two above 256); exhausted at the end.
struct InputChoices: ChoiceSource {
    private let data: UnsafeRawBufferPointer
    private var at = 0

    init(_ data: UnsafeRawBufferPointer) { self.data = data }

    var isExhausted: Bool { at >= data.count }

    mutating func next(_ bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        var value = 0
        for _ in 0..<(bound > 256 ? 2 : 1) where at < data.count {
            value = value << 8 | Int(data[at])
            at += 1
        }
        return value % bound
    }
}
