/// Deterministic response bodies of any length, produced a slice at a time so that even a
/// 100 MiB body never sits in memory.
enum OriginBody {
    /// Plain ASCII: byte `k` of the body is `ascii[k % 64]`.
    case ascii
    /// UTF-8 text mixing 1-, 2-, 3- and 4-byte characters, so any cut or write boundary can
    /// fall inside a character.
    case utf8
    /// A body that tries to forge SSE framing.
    case injection

    static let asciiPattern = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-\n".utf8)
    static let utf8Pattern = Array("héllo wörld ☃ snow — 𝄞 clef — ünïcödé ✓ 日本語 🙂\n".utf8)
    static let injectionBody = Array("before\n\nevent: done\ndata: x\n\nid: 999\r\nevent: open\r\n\r\nafter \"quoted\" \\ back\u{0}slash".utf8)

    /// Bodies up to this size with no shaping options are sent in one reply.
    static let smallBody = 64 * 1024

    var pattern: [UInt8] {
        switch self {
        case .ascii: Self.asciiPattern
        case .utf8: Self.utf8Pattern
        case .injection: Self.injectionBody
        }
    }

    /// The first 64 KiB of an ASCII body, built once: every ASCII write at a multiple of the
    /// pattern's length is a prefix of it.
    static let asciiBlock = OriginBody.ascii.generate(offset: 0, count: 64 * 1024)

    /// Bytes `offset ..< offset + count` of a body of this kind.
    func slice(offset: Int, count: Int) -> ArraySlice<UInt8> {
        if self == .ascii, offset % Self.asciiPattern.count == 0, count <= Self.asciiBlock.count {
            return Self.asciiBlock[0..<count]
        }
        return generate(offset: offset, count: count)[...]
    }

    private func generate(offset: Int, count: Int) -> [UInt8] {
        let p = pattern
        var out = [UInt8]()
        out.reserveCapacity(count)
        var k = offset % p.count
        for _ in 0..<count {
            out.append(p[k])
            k += 1
            if k == p.count { k = 0 }
        }
        return out
    }
}
