import Glibc

/// Stops the run with the input libFuzzer saves as a crash artifact.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        printError("broken invariant: \(message())")
        abort()
    }
}

/// Writes a line to standard error (libFuzzer's log).
func printError(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Cuts an input into pieces whose lengths depend only on the input, so that a crash replays.
///
/// The input's first byte seeds the lengths (0 to 2 × `typical` bytes, empty pieces included:
/// a read can deliver nothing); the rest is the payload.
struct Pieces {
    let payload: UnsafeRawBufferPointer
    private let seed: UInt64
    let typical: Int

    init(_ data: UnsafeRawBufferPointer, typical: Int = 8) {
        seed = UInt64(data.first ?? 0) &* 0x9E37_79B9_7F4A_7C15 | 1
        payload = data.isEmpty ? data : UnsafeRawBufferPointer(rebasing: data.dropFirst())
        self.typical = typical
    }

    /// The payload in pieces, in order.
    var all: [UnsafeRawBufferPointer] {
        var state = seed
        var out: [UnsafeRawBufferPointer] = []
        var at = 0
        repeat {
            // splitmix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let length = min(Int(z % UInt64(2 * typical + 1)), payload.count - at)
            out.append(UnsafeRawBufferPointer(rebasing: payload[at..<(at + length)]))
            at += length
        } while at < payload.count
        return out
    }
}
