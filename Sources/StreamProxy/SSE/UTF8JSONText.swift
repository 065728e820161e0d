/// Turns a byte stream that should be UTF-8 into the inside of a JSON string, piece by piece.
///
/// - A character split across pieces is held back (at most 3 bytes) and written whole with
///   the next piece, so no event ever carries half a character.
/// - Ill-formed bytes become U+FFFD, one per maximal ill-formed subpart (as the Unicode
///   standard and the WHATWG decoder do).
/// - `"`, `\` and control characters are escaped, so upstream bytes can never end the JSON
///   string, add a line to the SSE frame or forge an event.
package struct UTF8JSONText {
    /// Bytes of a character that has started but not finished.
    private var pending: (UInt8, UInt8, UInt8) = (0, 0, 0)
    private var pendingCount = 0

    package init() {}

    /// Bytes held back for the next piece.
    package var heldBytes: Int { pendingCount }

    /// Appends the escaped text of `input` to `out`.
    ///
    /// - Parameters:
    ///   - final: no more bytes follow: a held or trailing incomplete character is ill-formed
    ///     and becomes U+FFFD.
    /// - Returns: the number of bytes now represented in `out` (held-back bytes of an
    ///   incomplete character at the end are not, until a later call writes them).
    package mutating func append(_ input: UnsafeRawBufferPointer, final: Bool, into out: inout [UInt8]) -> Int {
        if pendingCount == 0 {
            return encode(input, final: final, into: &out)
        }
        // A character straddles the pieces (rare): encode the held bytes and the piece together.
        let joined = [pending.0, pending.1, pending.2].prefix(pendingCount) + Array(input)
        pendingCount = 0
        return joined.withUnsafeBytes { encode($0, final: final, into: &out) }
    }

    private mutating func encode(_ buf: UnsafeRawBufferPointer, final: Bool, into out: inout [UInt8]) -> Int {
        var i = 0
        let n = buf.count
        out.reserveCapacity(out.count + n + 16)
        while i < n {
            // Fast path: a run of plain printable ASCII, copied at once.
            var j = i
            while j < n, Self.isPlain(buf[j]) { j += 1 }
            if j > i {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<j]))
                i = j
                continue
            }
            if !step(buf, &i, n, final: final, into: &out) { break }
        }
        return i - pendingCount
    }

    /// Encodes one character starting at `i`, advancing `i`. Returns false when the character
    /// is incomplete at the end of a non-final piece; its bytes are then held in `pending` and
    /// `i` is moved to the end.
    private mutating func step(_ buf: UnsafeRawBufferPointer, _ i: inout Int, _ n: Int, final: Bool,
                               into out: inout [UInt8]) -> Bool {
        let b = buf[i]
        if b < 0x80 {
            escapeASCII(b, into: &out)
            i += 1
            return true
        }
        let need: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default:
            out.append(contentsOf: replacement)
            i += 1
            return true
        }
        var j = i + 1
        for k in 0..<need {
            if j >= n {
                if final {
                    out.append(contentsOf: replacement)
                    i = n
                    return true
                }
                hold(buf, from: i, to: n)
                i = n
                return false
            }
            let c = buf[j]
            let (l, h) = k == 0 ? (lo, hi) : (UInt8(0x80), UInt8(0xBF))
            if c < l || c > h {
                out.append(contentsOf: replacement)
                i = j
                return true
            }
            j += 1
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<j]))
        i = j
        return true
    }

    @inline(__always) private static func isPlain(_ b: UInt8) -> Bool {
        b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\")
    }

    private mutating func hold(_ buf: UnsafeRawBufferPointer, from: Int, to: Int) {
        pendingCount = to - from
        pending.0 = buf[from]
        if pendingCount > 1 { pending.1 = buf[from + 1] }
        if pendingCount > 2 { pending.2 = buf[from + 2] }
    }

    /// Forgets a held incomplete character: the prefix ended inside it.
    mutating func dropHeld() { pendingCount = 0 }

    /// Writes a held incomplete character as U+FFFD: the body ended inside it.
    package mutating func flushHeld(into out: inout [UInt8]) -> Int {
        guard pendingCount > 0 else { return 0 }
        let n = pendingCount
        pendingCount = 0
        out.append(contentsOf: replacement)
        return n
    }

    private func escapeASCII(_ b: UInt8, into out: inout [UInt8]) {
        switch b {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0x00..<0x20, 0x7F:
            out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigit(b >> 4), hexDigit(b & 0xF)])
        default: out.append(b)
        }
    }
}

private let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

private func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x61 + v - 10 }
