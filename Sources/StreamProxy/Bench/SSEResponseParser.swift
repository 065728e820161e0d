import Glibc

/// Reads one SSE response off the wire as the load generator receives it: the HTTP head,
/// chunked or close-delimited framing, then event after event.
///
/// Built so that the harness is never the bottleneck: lines are found with `memchr` and looked
/// at in place (a line is copied only when a read splits it), nothing is allocated per event,
/// and only what the report needs is kept: the status, whether the connection may be reused,
/// and per event its name and, for `error` events, the `kind` of its data.
package struct SSEResponseParser {
    /// The names of events the report tells apart.
    package enum EventName: Equatable {
        case chunk, done, error, other
    }

    /// What one ``feed(_:)`` found, in the order the report needs it.
    package struct Findings {
        /// The status line arrived, with this status.
        package var status: Int?
        /// Events dispatched.
        package var events = 0
        package var sawChunk = false
        package var sawDone = false
        /// The `kind` of each `error` event (rare: allocated only when there is one).
        package var errorKinds: [String] = []
        /// The body ended (final chunk).
        package var ended = false
    }

    private enum Framing {
        case head, chunkSize, chunkExtension, chunkData(Int), chunkCRLF
        /// After the last chunk: trailer lines up to an empty one (usually just that).
        case trailer(lineEmpty: Bool)
        case fixed(Int), closeDelimited, done
    }

    private var framing = Framing.head
    /// The head so far, or the start of a body line a read boundary split.
    private var carry: [UInt8] = []
    private var chunkSize = 0
    private var eventName: EventName?
    private var errorKind: String?
    private var chunked = false
    private var contentLength: Int?
    private var closeRequested = false
    private var http10 = false
    /// Body bytes decoded so far.
    package private(set) var bodyBytes = 0

    /// Bytes held for a head or a line a read split (checked by the fuzzer: never more than fed).
    package var bufferedBytes: Int { carry.count }

    package init() {}

    /// Whether the body has ended and the server allows another request on the connection.
    package var connectionReusable: Bool {
        guard case .done = framing else { return false }
        return (chunked || contentLength != nil) && !closeRequested && !http10
    }

    package var isDone: Bool {
        if case .done = framing { return true }
        return false
    }

    /// Feeds bytes from the socket.
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Findings {
        var found = Findings()
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return found }
        let n = bytes.count
        var i = 0
        while i < n {
            switch framing {
            case .head:
                i += head(base + i, n - i, &found)
            case .chunkSize:
                let b = base[i]
                i += 1
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): chunkSize = Self.appending(Int(b - 48), to: chunkSize)
                case UInt8(ascii: "a")...UInt8(ascii: "f"): chunkSize = Self.appending(Int(b - 87), to: chunkSize)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): chunkSize = Self.appending(Int(b - 55), to: chunkSize)
                case 0x0A: endOfChunkSize(&found)
                default: framing = .chunkExtension
                }
            case .chunkExtension:
                if base[i] == 0x0A { endOfChunkSize(&found) }
                i += 1
            case .chunkData(let left):
                let take = min(left, n - i)
                body(base + i, take, &found)
                i += take
                framing = left == take ? .chunkCRLF : .chunkData(left - take)
            case .chunkCRLF:
                if base[i] == 0x0A { framing = .chunkSize }
                i += 1
            case .trailer(let lineEmpty):
                let b = base[i]
                i += 1
                if b == 0x0A {
                    if lineEmpty {
                        framing = .done
                        found.ended = true
                        return found
                    }
                    framing = .trailer(lineEmpty: true)
                } else if b != 0x0D {
                    framing = .trailer(lineEmpty: false)
                }
            case .fixed(let left):
                let take = min(left, n - i)
                body(base + i, take, &found)
                i += take
                if left == take {
                    framing = .done
                    found.ended = true
                    return found
                }
                framing = .fixed(left - take)
            case .closeDelimited:
                body(base + i, n - i, &found)
                i = n
            case .done:
                return found
            }
        }
        return found
    }

    /// The connection closed: a close-delimited body ends here.
    package mutating func closed() -> Bool {
        guard case .closeDelimited = framing else { return false }
        framing = .done
        return true
    }

    private mutating func endOfChunkSize(_ found: inout Findings) {
        if chunkSize == 0 {
            // The body is over; the response ends after the trailer's empty line, which must be
            // read too: the next response on the connection starts after it.
            framing = .trailer(lineEmpty: true)
        } else {
            framing = .chunkData(chunkSize)
        }
        chunkSize = 0
    }

    /// A chunk size with one more hex digit. It saturates rather than wrap negative (found by the
    /// fuzzer: a negative size read before the buffer): a chunk too large for an Int never ends.
    private static func appending(_ digit: Int, to size: Int) -> Int { size > Int.max >> 4 ? Int.max : size << 4 | digit }

    /// Collects the head up to its blank line; returns the bytes consumed.
    private mutating func head(_ p: UnsafePointer<UInt8>, _ n: Int, _ found: inout Findings) -> Int {
        if carry.isEmpty, p[0] == 0x0D || p[0] == 0x0A {
            return 1  // line ends before a status line are ignored (RFC 9112 §2.2)
        }
        let before = carry.count
        carry.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        // The end may straddle the previous read: look from a little before it.
        let from = max(0, before - 3)
        guard let end = carry.withUnsafeBufferPointer({ Self.find([13, 10, 13, 10], in: $0, from: from) }) else { return n }
        let headLength = end + 4
        parseHead(carry[0..<headLength], &found)
        carry.removeAll(keepingCapacity: true)
        return headLength - before
    }

    /// Lines are taken one at a time (no `split`, which built an array per head and was a
    /// sixth of the harness's own instructions per stream).
    private mutating func parseHead(_ head: ArraySlice<UInt8>, _ found: inout Findings) {
        var rest = head
        func nextLine() -> ArraySlice<UInt8>? {
            while rest.first == 10 { rest = rest.dropFirst() }
            guard !rest.isEmpty else { return nil }
            let end = rest.firstIndex(of: 10) ?? rest.endIndex
            defer { rest = rest[end...] }
            return rest[..<end]
        }
        guard let statusLine = nextLine() else { return }
        http10 = statusLine.starts(with: "HTTP/1.0".utf8)
        // "HTTP/1.1 200 OK": the code is the second field.
        found.status = 0
        if let space = statusLine.firstIndex(of: 32) {
            let code = statusLine[(space + 1)...].drop { $0 == 32 }.prefix { $0 != 32 && $0 != 13 }
            found.status = Self.integer(code) ?? 0
        }
        while let line = nextLine() {
            if let value = Self.value(of: "transfer-encoding", in: line), Self.contains("chunked", in: value) { chunked = true }
            if let value = Self.value(of: "connection", in: line), Self.contains("close", in: value) { closeRequested = true }
            if let value = Self.value(of: "content-length", in: line) { contentLength = Self.integer(value) }
        }
        if chunked {
            framing = .chunkSize
        } else if let length = contentLength {
            framing = .fixed(length)
            if length == 0 {
                framing = .done
                found.ended = true
            }
        } else {
            framing = .closeDelimited
        }
    }

    private mutating func body(_ p: UnsafePointer<UInt8>, _ n: Int, _ found: inout Findings) {
        bodyBytes += n
        var start = 0
        while start < n {
            guard let nl = memchr(p + start, 10, n - start) else {
                carry.append(contentsOf: UnsafeBufferPointer(start: p + start, count: n - start))
                return
            }
            let end = UnsafePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - p
            if carry.isEmpty {
                line(UnsafeBufferPointer(start: p + start, count: end - start), &found)
            } else {
                carry.append(contentsOf: UnsafeBufferPointer(start: p + start, count: end - start))
                carry.withUnsafeBufferPointer { line($0, &found) }
                carry.removeAll(keepingCapacity: true)
            }
            start = end + 1
        }
    }

    /// One body line, without its `\n`.
    private mutating func line(_ raw: UnsafeBufferPointer<UInt8>, _ found: inout Findings) {
        let l = raw.last == 13 ? UnsafeBufferPointer(rebasing: raw.dropLast()) : raw
        if l.isEmpty {
            if let name = eventName {
                found.events += 1
                switch name {
                case .chunk: found.sawChunk = true
                case .done: found.sawDone = true
                case .error: found.errorKinds.append(errorKind ?? "unknown")
                case .other: break
                }
            }
            eventName = nil
            errorKind = nil
        } else if Self.bytes(l, startWith: "event: ") {
            let name = UnsafeBufferPointer(rebasing: l.dropFirst(7))
            eventName = Self.bytes(name, equal: "chunk") ? .chunk
                : Self.bytes(name, equal: "done") ? .done
                : Self.bytes(name, equal: "error") ? .error : .other
        } else if eventName == .error, Self.bytes(l, startWith: "data: ") {
            errorKind = Self.kind(in: l)
        }
    }
}
