/// Appends JSON to a byte buffer without building an intermediate value tree.
///
/// Events are written once per chunk on the hot path, so they are serialised straight into
/// the output bytes. The writer does not check structure: callers write well-formed objects.
struct JSONWriter {
    var bytes: [UInt8]

    init(into bytes: [UInt8] = []) { self.bytes = bytes }

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// `"key":`
    mutating func key(_ k: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        raw(k)
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = UTF8JSONText()
        s.utf8.withContiguousStorageIfAvailable { buf in
            _ = text.append(UnsafeRawBufferPointer(buf), final: true, into: &bytes)
        } ?? {
            let copy = Array(s.utf8)
            copy.withUnsafeBytes { _ = text.append($0, final: true, into: &bytes) }
        }()
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func string(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }

    mutating func int(_ n: Int) {
        bytes.appendDecimal(n)
    }

    /// A number of milliseconds with one decimal, e.g. `12.3`.
    mutating func milliseconds(_ ms: Double) {
        let tenths = (ms * 10).rounded()
        guard tenths.magnitude < 1e15 else { return raw("null") }
        let t = Int(tenths)
        if t < 0 && t > -10 { bytes.append(UInt8(ascii: "-")) }
        bytes.appendDecimal(t / 10)
        bytes.append(UInt8(ascii: "."))
        bytes.append(UInt8(ascii: "0") + UInt8(abs(t % 10)))
    }

    mutating func bool(_ b: Bool) {
        if b { raw("true") } else { raw("false") }
    }

    mutating func comma() { bytes.append(UInt8(ascii: ",")) }
}

extension JSONWriter {
    /// A one-level JSON object of string fields, for error bodies and small documents.
    static func object(_ fields: [(String, JSONValue)]) -> [UInt8] {
        var w = JSONWriter()
        w.value(.object(fields))
        return w.bytes
    }

    mutating func value(_ v: JSONValue) {
        switch v {
        case .string(let s): string(s)
        case .int(let n): int(n)
        case .bool(let b): bool(b)
        // Swift's shortest round-trip form ("1.5", "0.25") is valid JSON for finite values.
        case .number(let x): x.isFinite ? bytes.append(contentsOf: String(x).utf8) : raw("null")
        case .null: raw("null")
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { comma() }
                value(item)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let fields):
            bytes.append(UInt8(ascii: "{"))
            for (n, (k, item)) in fields.enumerated() {
                if n > 0 { comma() }
                string(k)
                bytes.append(UInt8(ascii: ":"))
                value(item)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}

/// A JSON value for documents off the hot path (errors, /routes).
enum JSONValue: Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case number(Double)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])
}

extension [UInt8] {
    /// Appends `n` in decimal. Numbers go into every event (ids, indexes, byte counts,
    /// milliseconds): this writes them without building a `String` for each.
    mutating func appendDecimal(_ n: Int) {
        // Upstream indexes and most counts are one digit.
        if n >= 0 && n < 10 {
            append(UInt8(ascii: "0") + UInt8(n))
            return
        }
        if n < 0 { append(UInt8(ascii: "-")) }
        var m = n.magnitude
        // 20 digits hold any UInt64, filled from the end.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var i = 20
            repeat {
                i -= 1
                digits[i] = UInt8(ascii: "0") + UInt8(m % 10)
                m /= 10
            } while m > 0
            append(contentsOf: UnsafeBufferPointer(rebasing: digits[i...]))
        }
    }
}
