/// Reads one SSE response off the wire as the load generator receives it: the HTTP head,
/// chunked or close-delimited framing, then event after event. Built for speed over
/// generality: it keeps only what the benchmark reports (status, event names, error kinds).
struct SSEResponseParser {
    enum Event: Equatable {
        case head(status: Int)
        /// An SSE event: its name and, for `error` events, the `kind` of its data.
        case event(name: Substring, errorKind: String?)
        /// The response body ended (final chunk, or the connection closed).
        case end
    }

    private enum Framing { case head, chunkSize, chunkData(Int), chunkCRLF, closeDelimited, done }

    private var framing = Framing.head
    private var line: [UInt8] = []
    private var eventName: [UInt8] = []
    private var errorKind: String?
    /// Body bytes decoded so far.
    private(set) var bodyBytes = 0

    /// Feeds bytes from the socket; calls `emit` for each thing parsed.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (Event) -> Void) {
        var i = 0
        let n = bytes.count
        while i < n {
            switch framing {
            case .head:
                let b = bytes[i]
                i += 1
                line.append(b)
                if b == 0x0A, line.count >= 4, line.suffix(4).elementsEqual([13, 10, 13, 10]) {
                    let head = String(decoding: line, as: UTF8.self)
                    line.removeAll(keepingCapacity: true)
                    let status = Int(head.split(separator: " ", maxSplits: 2).dropFirst().first ?? "") ?? 0
                    emit(.head(status: status))
                    framing = head.lowercased().contains("transfer-encoding: chunked") ? .chunkSize : .closeDelimited
                }
            case .chunkSize:
                let b = bytes[i]
                i += 1
                if b == 0x0A {
                    let size = Int(String(decoding: line.filter { $0 != 13 }, as: UTF8.self)
                        .split(separator: ";").first ?? "", radix: 16) ?? 0
                    line.removeAll(keepingCapacity: true)
                    if size == 0 {
                        framing = .done
                        emit(.end)
                    } else {
                        framing = .chunkData(size)
                    }
                } else {
                    line.append(b)
                }
            case .chunkData(let left):
                let take = min(left, n - i)
                body(UnsafeRawBufferPointer(rebasing: bytes[i..<i + take]), emit)
                i += take
                framing = left - take == 0 ? .chunkCRLF : .chunkData(left - take)
            case .chunkCRLF:
                if bytes[i] == 0x0A { framing = .chunkSize }
                i += 1
            case .closeDelimited:
                body(UnsafeRawBufferPointer(rebasing: bytes[i...]), emit)
                i = n
            case .done:
                return
            }
        }
    }

    /// The connection closed: a close-delimited body ends here.
    mutating func closed(_ emit: (Event) -> Void) {
        if case .closeDelimited = framing {
            framing = .done
            emit(.end)
        }
    }

    var isDone: Bool {
        if case .done = framing { return true }
        return false
    }

    private mutating func body(_ bytes: UnsafeRawBufferPointer, _ emit: (Event) -> Void) {
        bodyBytes += bytes.count
        for b in bytes {
            if b != 0x0A {
                line.append(b)
                continue
            }
            if line.last == 13 { line.removeLast() }
            if line.isEmpty {
                if !eventName.isEmpty {
                    emit(.event(name: Substring(decoding: eventName, as: UTF8.self), errorKind: errorKind))
                }
                eventName.removeAll(keepingCapacity: true)
                errorKind = nil
            } else if line.starts(with: "event: ".utf8) {
                eventName = Array(line.dropFirst(7))
            } else if eventName.elementsEqual("error".utf8), line.starts(with: "data: ".utf8) {
                errorKind = Self.kind(in: line)
            }
            line.removeAll(keepingCapacity: true)
        }
    }

    /// The value of `"kind":"..."` in an error event's JSON.
    private static func kind(in line: [UInt8]) -> String? {
        let text = String(decoding: line, as: UTF8.self)
        guard let r = text.range(of: #""kind":""#) else { return nil }
        let rest = text[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }
}
