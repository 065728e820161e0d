import Glibc

/// The byte-level matching ``SSEResponseParser`` does in place: header fields, event names, the
/// `kind` of an error event. Bytes throughout: no strings are made for the head or per event.
extension SSEResponseParser {
    @inline(__always)
    static func bytes(_ b: UnsafeBufferPointer<UInt8>, startWith s: StaticString) -> Bool {
        b.count >= s.utf8CodeUnitCount && memcmp(b.baseAddress!, s.utf8Start, s.utf8CodeUnitCount) == 0
    }

    @inline(__always)
    static func bytes(_ b: UnsafeBufferPointer<UInt8>, equal s: StaticString) -> Bool {
        b.count == s.utf8CodeUnitCount && memcmp(b.baseAddress!, s.utf8Start, s.utf8CodeUnitCount) == 0
    }

    /// The value of header field `name` (lowercase) if `line` is that field, without surrounding
    /// blanks or the line's CR. Bytes throughout: no strings are made for the head.
    static func value(of name: StaticString, in line: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        let n = name.utf8CodeUnitCount
        guard line.count > n, line[line.startIndex + n] == UInt8(ascii: ":") else { return nil }
        let matches = name.withUTF8Buffer { key in
            zip(key, line).allSatisfy { k, b in k == (b | (b >= 65 && b <= 90 ? 0x20 : 0)) }
        }
        guard matches else { return nil }
        var value = line[(line.startIndex + n + 1)...]
        while let b = value.first, b == 32 || b == 9 { value = value.dropFirst() }
        while let b = value.last, b == 32 || b == 9 || b == 13 { value = value.dropLast() }
        return value
    }

    /// Whether `value` contains the lowercase `token`, case-insensitively.
    static func contains(_ token: StaticString, in value: ArraySlice<UInt8>) -> Bool {
        let lowered = value.map { $0 | ($0 >= 65 && $0 <= 90 ? 0x20 : 0) }
        return token.withUTF8Buffer { t in
            lowered.withUnsafeBufferPointer { find(Array(t), in: $0, from: 0) != nil }
        }
    }

    /// A decimal number, or nil.
    static func integer(_ digits: some Collection<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        var n = 0
        for d in digits {
            guard d >= 48 && d <= 57 else { return nil }
            n = n * 10 + Int(d - 48)
        }
        return n
    }

    /// The value of `"kind":"..."` in an error event's JSON.
    static func kind(in line: UnsafeBufferPointer<UInt8>) -> String? {
        let key = Array(#""kind":""#.utf8)
        guard let at = find(key, in: line, from: 0) else { return nil }
        let rest = line[(at + key.count)...]
        guard let close = rest.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return String(decoding: rest[..<close], as: UTF8.self)
    }

    /// The offset of the first `needle` in `haystack` at or after `from`.
    static func find(_ needle: [UInt8], in haystack: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = from
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
