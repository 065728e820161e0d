/// A strict RFC 8259 JSON parser for config files, written so that object order survives and a
/// syntax error carries its line and column. Duplicate keys are an error rather than "last one
/// wins", which would hide a mistake just as an unknown key would.
struct ConfigJSONParser {
    struct SyntaxError: Error, CustomStringConvertible {
        let message: String
        let line: Int
        let column: Int

        var description: String { "\(message) at line \(line), column \(column)" }
    }

    /// Deep enough for any config; shallow enough that `[[[[...` cannot exhaust the stack.
    private static let maxDepth = 64

    private let bytes: [UInt8]
    private var index = 0

    /// Parses one JSON document from valid UTF-8; a leading byte-order mark is skipped.
    static func parse(_ utf8: [UInt8]) throws(SyntaxError) -> ConfigJSON {
        var parser = ConfigJSONParser(bytes: utf8)
        if utf8.starts(with: [0xEF, 0xBB, 0xBF]) { parser.index = 3 }
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == utf8.count else { throw parser.error("unexpected text after the document") }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private mutating func value(depth: Int) throws(SyntaxError) -> ConfigJSON {
        skipWhitespace()
        guard depth < Self.maxDepth else { throw error("nested more than \(Self.maxDepth) levels deep") }
        guard let byte = peek else { throw error("unexpected end of file, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected character \(Self.show(byte)), expected a value")
        }
    }

    private mutating func object(depth: Int) throws(SyntaxError) -> ConfigJSON {
        index += 1
        var members: [(key: String, value: ConfigJSON)] = []
        var keys = Set<String>()
        skipWhitespace()
        if peek == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw error("expected a key in double quotes") }
            let keyStart = index
            let key = try string()
            guard keys.insert(key).inserted else {
                index = keyStart
                throw error("duplicate key \(ConfigSyntax.quoted(key))")
            }
            skipWhitespace()
            try expect(":", "expected ':' after the key")
            members.append((key, try value(depth: depth + 1)))
            skipWhitespace()
            if peek == UInt8(ascii: ",") { index += 1; continue }
            try expect("}", "expected ',' or '}'")
            return .object(members)
        }
    }

    private mutating func array(depth: Int) throws(SyntaxError) -> ConfigJSON {
        index += 1
        var elements: [ConfigJSON] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            if peek == UInt8(ascii: ",") { index += 1; continue }
            try expect("]", "expected ',' or ']'")
            return .array(elements)
        }
    }

    /// A string starting at the opening quote. The input is valid UTF-8 and quotes and
    /// backslashes are ASCII, so raw bytes can be copied through unchanged.
    private mutating func string() throws(SyntaxError) -> String {
        index += 1
        var utf8: [UInt8] = []
        while true {
            guard let byte = peek else { throw error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                utf8.append(contentsOf: try escape())
            case 0..<0x20:
                throw error("control character in a string (write it as an escape such as \\n)")
            default:
                utf8.append(byte)
                index += 1
            }
        }
    }

    /// The UTF-8 of the escape after a backslash.
    private mutating func escape() throws(SyntaxError) -> [UInt8] {
        guard let byte = peek else { throw error("unterminated string") }
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): return [byte]
        case UInt8(ascii: "b"): return [0x08]
        case UInt8(ascii: "f"): return [0x0C]
        case UInt8(ascii: "n"): return [0x0A]
        case UInt8(ascii: "r"): return [0x0D]
        case UInt8(ascii: "t"): return [0x09]
        case UInt8(ascii: "u"): return Array(String(Character(try unicodeEscape())).utf8)
        default:
            index -= 1
            throw error("invalid escape \\\(Self.show(byte))")
        }
    }

    /// `\uXXXX` after the `u`, joining a UTF-16 surrogate pair written as two escapes.
    private mutating func unicodeEscape() throws(SyntaxError) -> Unicode.Scalar {
        let unit = try hex4()
        if let scalar = Unicode.Scalar(unit) { return scalar }
        let lowStart = index
        if (0xD800..<0xDC00).contains(unit),
           bytes[index...].starts(with: Array("\\u".utf8)) {
            index += 2
            let low = try hex4()
            if (0xDC00..<0xE000).contains(low),
               let scalar = Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)) {
                return scalar
            }
        }
        index = lowStart
        throw error("unpaired UTF-16 surrogate in a \\u escape")
    }

    private mutating func hex4() throws(SyntaxError) -> UInt32 {
        let digits = bytes[index..<min(index + 4, bytes.count)]
        guard digits.count == 4, digits.allSatisfy({ Character(Unicode.Scalar($0)).isHexDigit }),
              let unit = UInt32(String(decoding: digits, as: UTF8.self), radix: 16)
        else { throw error("expected 4 hex digits after \\u") }
        index += 4
        return unit
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, returned as written.
    private mutating func number() throws(SyntaxError) -> String {
        let start = index
        if peek == UInt8(ascii: "-") { index += 1 }
        if peek == UInt8(ascii: "0") {
            index += 1
        } else {
            try digits()
        }
        if peek == UInt8(ascii: ".") {
            index += 1
            try digits()
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            try digits()
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func digits() throws(SyntaxError) {
        let start = index
        while let byte = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
        guard index > start else { throw error("expected a digit in a number") }
    }

    private mutating func literal(_ word: String) throws(SyntaxError) {
        guard bytes[index...].starts(with: Array(word.utf8)) else {
            throw error("unexpected word, expected a value (true, false, null, a number, a string, [ or {)")
        }
        index += word.utf8.count
    }

    private mutating func expect(_ character: Unicode.Scalar, _ message: String) throws(SyntaxError) {
        guard peek == UInt8(ascii: character) else {
            throw error(peek == nil ? "unexpected end of file, \(message)" : message)
        }
        index += 1
    }

    private mutating func skipWhitespace() {
        while let byte = peek, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { index += 1 }
    }

    private var peek: UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    /// An error at the current position; the column counts characters, not bytes.
    private func error(_ message: String) -> SyntaxError {
        let before = bytes[..<index]
        let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        let line = before.count { $0 == 0x0A } + 1
        let column = bytes[lineStart..<index].count { $0 & 0xC0 != 0x80 } + 1
        return SyntaxError(message: message, line: line, column: column)
    }

    /// A byte as it reads in a message: the character when printable ASCII, else its hex value.
    private static func show(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16))"
    }
}
