/// Reading the header lines libcurl hands the header callback, in place: every response header
/// of every transfer passes here, so nothing is allocated unless a value is kept.
enum HeaderLine {
    /// Whether `line` starts with `prefix` exactly (`HTTP/` of a status line).
    static func starts(_ line: UnsafeRawBufferPointer, with prefix: StaticString) -> Bool {
        prefix.withUTF8Buffer { p in
            guard line.count >= p.count else { return false }
            for i in 0..<p.count where line[i] != p[i] { return false }
            return true
        }
    }

    /// The value of `line` when it is the header `name` (lowercase, without the colon;
    /// matched ignoring case), with the blanks around it trimmed as libcurl trims them.
    static func value(of name: StaticString, in line: UnsafeRawBufferPointer) -> Slice<UnsafeRawBufferPointer>? {
        let matched = name.withUTF8Buffer { n -> Bool in
            guard line.count > n.count, line[n.count] == UInt8(ascii: ":") else { return false }
            for i in 0..<n.count where lowercased(line[i]) != n[i] { return false }
            return true
        }
        guard matched else { return nil }
        var start = name.utf8CodeUnitCount + 1, end = line.count
        while start < end, isBlank(line[start]) { start += 1 }
        while end > start, isBlank(line[end - 1]) { end -= 1 }
        return line[start..<end]
    }

    @inline(__always) static func lowercased(_ c: UInt8) -> UInt8 {
        c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c | 0x20 : c
    }

    @inline(__always) private static func isBlank(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A
    }
}
