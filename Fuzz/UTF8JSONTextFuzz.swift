import StreamProxy

/// `UTF8JSONText`, fed the payload whole and in pieces:
/// - the output is always the body of a valid JSON string (checked by a strict decoder here,
///   independent of the product's parsers);
/// - that string decodes to exactly what Swift's `String(decoding:as:)` makes of the bytes
///   (U+FFFD per maximal ill-formed subpart);
/// - any cut gives the same output as none, holds at most 3 bytes between pieces, and counts
///   every input byte exactly once.
enum UTF8JSONTextFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        let pieces = Pieces(data)
        let input = pieces.payload

        var whole: [UInt8] = []
        var oneShot = UTF8JSONText()
        let counted = oneShot.append(input, final: true, into: &whole)
        check(counted == input.count, "final append counted \(counted) of \(input.count) bytes")

        guard let decoded = JSONStringBody.decode(whole) else {
            check(false, "not a JSON string body: \(whole)")
            return
        }
        let expected = Array(String(decoding: input, as: UTF8.self).utf8)
        check(decoded == expected, "decodes to \(decoded), Swift decodes \(expected)")

        let cut = pieces.all
        for endWithFlush in [false, true] {
            var split: [UInt8] = []
            var encoder = UTF8JSONText()
            var total = 0
            for (i, piece) in cut.enumerated() {
                let last = i == cut.count - 1
                total += encoder.append(piece, final: last && !endWithFlush, into: &split)
                check(encoder.heldBytes <= 3, "holds \(encoder.heldBytes) bytes")
            }
            if endWithFlush { total += encoder.flushHeld(into: &split) }
            check(encoder.heldBytes == 0, "bytes held after the end")
            check(total == input.count, "pieces counted \(total) of \(input.count) bytes")
            check(split == whole, "cut into \(cut.map(\.count)) gives \(split), whole gives \(whole)")
        }
    }
}

/// A strict decoder for the inside of a JSON string (RFC 8259 §7): unescaped code points are
/// U+0020 and up except `"` and `\`, in valid UTF-8; escapes are the eight short ones or
/// `\uXXXX` (surrogates must pair).
enum JSONStringBody {
    static func decode(_ body: [UInt8]) -> [UInt8]? {
        guard let text = String(validating: body, as: UTF8.self) else { return nil }
        var out = ""
        var it = text.unicodeScalars.makeIterator()
        while let c = it.next() {
            switch c {
            case "\"": return nil
            case "\\":
                guard let e = it.next() else { return nil }
                switch e {
                case "\"", "\\", "/": out.unicodeScalars.append(e)
                case "b": out += "\u{08}"
                case "f": out += "\u{0C}"
                case "n": out += "\n"
                case "r": out += "\r"
                case "t": out += "\t"
                case "u":
                    guard let unit = hex4(&it) else { return nil }
                    if (0xD800..<0xDC00).contains(unit) {
                        guard it.next() == "\\", it.next() == "u", let low = hex4(&it),
                              (0xDC00..<0xE000).contains(low) else { return nil }
                        out.unicodeScalars.append(Unicode.Scalar(0x10000 + (unit - 0xD800) << 10 + (low - 0xDC00))!)
                    } else {
                        guard let scalar = Unicode.Scalar(unit) else { return nil }
                        out.unicodeScalars.append(scalar)
                    }
                default: return nil
                }
            default:
                guard c.value >= 0x20 else { return nil }
                out.unicodeScalars.append(c)
            }
        }
        return Array(out.utf8)
    }

    private static func hex4(_ it: inout String.UnicodeScalarView.Iterator) -> UInt32? {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = it.next(), let d = hexValue(c) else { return nil }
            v = v << 4 | d
        }
        return v
    }

    private static func hexValue(_ c: Unicode.Scalar) -> UInt32? {
        switch c {
        case "0"..."9": c.value - 0x30
        case "a"..."f": c.value - 0x61 + 10
        case "A"..."F": c.value - 0x41 + 10
        default: nil
        }
    }
}
