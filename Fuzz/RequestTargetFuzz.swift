import EventLoop
import Foundation

/// The request target's path and query decoding, on any target evhttp could hand over (a C
/// string: no NUL; any other bytes, repaired to UTF-8 as `HTTPRequest.uri` does):
/// - the path decodes as Foundation's `removingPercentEncoding` does, except that it stays as
///   sent where Foundation repairs bytes that are not UTF-8;
/// - every decoded component survives a round trip: each of its bytes written as `%XX` decodes
///   back to exactly it (names, values and their order).
enum RequestTargetFuzz {
    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = data.prefix { $0 != 0 }
        let raw = String(decoding: bytes, as: UTF8.self)
        let target = RequestTarget(raw)

        // The query starts at the first '?' byte, whatever follows it (a Character split would
        // not split a '?' that a combining mark follows).
        let rawPath = raw.utf8.firstIndex(of: UInt8(ascii: "?")).map { raw[..<$0] } ?? raw[...]
        // Foundation gives nil for a malformed escape but repairs decoded bytes that are not
        // UTF-8 with U+FFFD, where the target keeps the path as sent.
        let foundation = rawPath.removingPercentEncoding ?? String(rawPath)
        let keptAsSent = Array(target.path.utf8) == Array(rawPath.utf8) && foundation.contains("\u{FFFD}")
        check(Array(target.path.utf8) == Array(foundation.utf8) || keptAsSent,
              "path \(target.path.debugDescription) of \(raw.debugDescription), Foundation gives \(foundation.debugDescription)")

        let query = target.query
        let encoded = encodeAll(target.path) + "?" + query.map { encodeAll($0.name) + "=" + encodeAll($0.value) }
            .joined(separator: "&")
        let again = RequestTarget(encoded)
        check(Array(again.path.utf8) == Array(target.path.utf8), "path \(target.path.debugDescription) does not survive encoding")
        let decodedAgain = again.query
        check(decodedAgain.count == query.count, "\(query.count) parameters become \(decodedAgain.count)")
        for (a, b) in zip(query, decodedAgain) {
            check(Array(a.name.utf8) == Array(b.name.utf8) && Array(a.value.utf8) == Array(b.value.utf8),
                  "parameter \(a) becomes \(b)")
        }
        if let first = query.first {
            check(target.queryValue(first.name).map { Array($0.utf8) } == Array(first.value.utf8), "queryValue misses \(first.name)")
        }
    }

    /// Every byte as `%XX`.
    private static func encodeAll(_ s: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in s.utf8 { out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }
}
