/// A request target (RFC 9112 §3.2, origin form: path and query) as the handlers read it.
///
/// A value apart from ``HTTPRequest`` so that its decoding is tested and fuzzed without evhttp.
/// Decoding never fails: a component whose escapes are malformed, or decode to bytes that are
/// not UTF-8, is kept as sent (the handlers then find no route or option of that name).
public struct RequestTarget: Sendable, Equatable {
    /// The target as sent.
    public let raw: String

    public init(_ raw: String) {
        self.raw = raw
    }

    /// The percent-decoded path, without the query.
    public var path: String {
        let rawPath = raw.utf8.firstIndex(of: UInt8(ascii: "?")).map { raw[..<$0] } ?? raw[...]
        return percentDecode(rawPath) ?? String(rawPath)
    }

    /// The query parameters in order; names and values percent-decoded (`+` as space). Empty
    /// pairs (`a=1&&b=2`) are skipped; a pair without `=` has the empty value. Like `?`, the
    /// delimiters are bytes, whatever follows them (a combining mark after `&` still splits).
    public var query: [(name: String, value: String)] {
        guard let q = raw.utf8.firstIndex(of: UInt8(ascii: "?")) else { return [] }
        return raw[raw.utf8.index(after: q)...].utf8.split(separator: UInt8(ascii: "&")).map { pair in
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let name = Substring(pair[..<(equals ?? pair.endIndex)])
            let value = equals.map { Substring(pair[pair.index(after: $0)...]) }
            return (percentDecode(name, plusAsSpace: true) ?? String(name),
                    value.map { percentDecode($0, plusAsSpace: true) ?? String($0) } ?? "")
        }
    }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }
}

/// Decodes `%XX` escapes; nil when an escape is malformed or the result is not UTF-8.
func percentDecode(_ s: Substring, plusAsSpace: Bool = false) -> String? {
    guard s.utf8.contains(UInt8(ascii: "%")) || (plusAsSpace && s.utf8.contains(UInt8(ascii: "+"))) else { return String(s) }
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count)
    var it = s.utf8.makeIterator()
    while let c = it.next() {
        switch c {
        case UInt8(ascii: "%"):
            guard let h = it.next(), let l = it.next(), let hv = hexValue(h), let lv = hexValue(l) else { return nil }
            out.append(hv << 4 | lv)
        case UInt8(ascii: "+") where plusAsSpace:
            out.append(UInt8(ascii: " "))
        default:
            out.append(c)
        }
    }
    return String(validating: out, as: UTF8.self)
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}
