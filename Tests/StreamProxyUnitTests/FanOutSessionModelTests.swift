import Foundation
import Testing
@testable import StreamProxy
import StreamTestSupport

/// Random but legal event sequences against the session, every invariant checked after every
/// step (see ``SessionModel``). `SESSION_MODEL_SEQUENCES` sets how many: 150 by default, 2,000 in
/// `make test`'s model step; `make fuzz FUZZ_TARGETS=fanout-session` drives the same model from
/// libFuzzer.
@Suite struct FanOutSessionModelTests {
    static let sequences = ProcessInfo.processInfo.environment["SESSION_MODEL_SEQUENCES"].flatMap(Int.init) ?? 150

    /// Bodies with ASCII, multi-byte characters, ill-formed bytes and framing characters.
    static let alphabet: [[UInt8]] = [
        Array("a".utf8), Array("é".utf8), Array("€".utf8), Array("😀".utf8), [0xFF], [0xE2, 0x82],
        Array("\n\nevent: done\n".utf8), Array("\"\\".utf8), [0x00], Array("\r".utf8),
    ]

    @Test func randomSequencesKeepEveryInvariant() throws {
        var rng = SeededChoices(seed: 0x5EED_F00D)
        for n in 0..<Self.sequences {
            let upstreams = rng.next(5)
            let bodies = (0..<upstreams).map { _ in
                (0..<rng.next(30)).flatMap { _ in Self.alphabet[rng.next(Self.alphabet.count)] }
            }
            var model = SessionModel(upstreams: upstreams, prefix: 1 + rng.next(24),
                                     order: rng.next(2) == 0 ? .completion : .sequential, bodies: bodies)
            do {
                try model.run(steps: 200, choices: &rng)
            } catch {
                Issue.record("sequence \(n): \(error)")
                return
            }
        }
    }
}

/// SplitMix64: a small seeded generator, so a failing sequence repeats exactly.
struct SeededChoices: ChoiceSource {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(bound))
    }
}
