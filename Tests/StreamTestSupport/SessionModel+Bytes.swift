import StreamProxy

/// Choices read from bytes, one each (two above 256), until they run out: the `fanout-session`
/// fuzz target's input, and the inputs it found, replayed as unit tests.
package struct InputChoices: ChoiceSource {
    private let data: [UInt8]
    private var at = 0

    package init(_ data: [UInt8]) { self.data = data }

    package var isExhausted: Bool { at >= data.count }

    package mutating func next(_ bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        var value = 0
        for _ in 0..<(bound > 256 ? 2 : 1) where at < data.count {
            value = value << 8 | Int(data[at])
            at += 1
        }
        return value % bound
    }
}

extension SessionModel {
    /// A session whose shape (upstreams, prefix, order, bodies) and events are all read from
    /// `bytes`, every invariant checked after every step.
    package static func run(bytes: [UInt8]) throws(SessionModelFailure) {
        var choices = InputChoices(bytes)
        let upstreams = choices.next(6)
        let prefix = 1 + choices.next(32)
        let order: StreamOrder = choices.next(2) == 0 ? .completion : .sequential
        let bodies = (0..<upstreams).map { _ in (0..<choices.next(48)).map { _ in UInt8(choices.next(256)) } }
        var model = SessionModel(upstreams: upstreams, prefix: prefix, order: order, bodies: bodies)
        try model.run(steps: 2_000, choices: &choices)
    }
}
