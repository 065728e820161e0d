/// One dispatched Server-Sent Event.
package struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, or "message" when the block had none (as EventSource does).
    package var event: String
    /// The `id:` field of *this* event's block, or nil if it had none. (The spec's persistent
    /// "last event ID" is `SSEParser.lastEventID`; tests want to see which events carry an id.)
    package var id: String?
    /// The `data:` lines joined with "\n".
    package var data: String
    /// When the parser dispatched it: the arrival time of the bytes that completed it.
    package var receivedAt: ContinuousClock.Instant

    package init(event: String, id: String?, data: String, receivedAt: ContinuousClock.Instant) {
        self.event = event
        self.id = id
        self.data = data
        self.receivedAt = receivedAt
    }

    /// Equality ignores `receivedAt`, so tests can compare against expected events.
    package static func == (a: SSEEvent, b: SSEEvent) -> Bool {
        a.event == b.event && a.id == b.id && a.data == b.data
    }
}

/// An incremental `text/event-stream` parser following the WHATWG HTML "event stream
/// interpretation" rules, plus a record of comments (the spec discards them, but the tests
/// count `: ping` heartbeats).
///
/// Feed it bytes split anywhere: it buffers bytes and decodes only whole lines, so a multi-byte
/// UTF-8 character cut between two reads comes out intact (line ends, 0x0A/0x0D, never occur
/// inside a multi-byte character). Invalid UTF-8 becomes U+FFFD, like a browser.
package struct SSEParser: Sendable {
    /// Every event dispatched so far, in order.
    package private(set) var events: [SSEEvent] = []
    /// Every comment line so far, without the leading ":" and one following space
    /// (`": ping"` is recorded as `"ping"`).
    package private(set) var comments: [String] = []
    /// The last valid `retry:` value (milliseconds), if any.
    package private(set) var retry: Int?
    /// The spec's last event ID: set by `id:` fields, kept across events.
    package private(set) var lastEventID = ""

    private var line: [UInt8] = []
    private var lastByteWasCR = false
    private var atStreamStart = true
    private var eventType = ""
    private var data = ""
    private var hasData = false
    private var blockID: String?
    private var blockHasFields = false

    package init() {}

    /// Parses `bytes` and returns the events they completed (also appended to `events`).
    @discardableResult
    package mutating func feed(_ bytes: some Sequence<UInt8>, at now: ContinuousClock.Instant = .now) -> [SSEEvent] {
        let before = events.count
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\r"):
                lastByteWasCR = true
                endLine(at: now)
            case UInt8(ascii: "\n"):
                // The LF of a CRLF pair (possibly split across feeds) ends nothing new.
                if lastByteWasCR { lastByteWasCR = false } else { endLine(at: now) }
            default:
                lastByteWasCR = false
                line.append(byte)
            }
        }
        return Array(events[before...])
    }

    /// Parses a string's UTF-8 bytes (convenient for fixed test inputs).
    @discardableResult
    package mutating func feed(_ text: String, at now: ContinuousClock.Instant = .now) -> [SSEEvent] {
        feed(Array(text.utf8), at: now)
    }

    /// True if the bytes so far end inside an event (an unterminated line or fields without the
    /// closing blank line). At end of stream the spec discards such a partial event, so a
    /// server's stream should end with this false.
    package var hasPartialEvent: Bool { !line.isEmpty || blockHasFields }

    private mutating func endLine(at now: ContinuousClock.Instant) {
        var bytes = line[...]
        line.removeAll(keepingCapacity: true)
        if atStreamStart {
            atStreamStart = false
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }  // one leading BOM
        }
        guard !bytes.isEmpty else { return dispatch(at: now) }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.first == ":" {
            comments.append(String(Self.dropOneSpace(text.dropFirst())))
            return
        }
        blockHasFields = true
        let name: Substring, value: Substring
        if let colon = text.firstIndex(of: ":") {
            name = text[..<colon]
            value = Self.dropOneSpace(text[text.index(after: colon)...])
        } else {
            name = text[...]
            value = ""
        }
        switch name {
        case "event":
            eventType = String(value)
        case "data":
            data += value + "\n"
            hasData = true
        case "id":
            if !value.contains("\0") {
                lastEventID = String(value)
                blockID = String(value)
            }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0.isASCII && $0.isNumber }), let ms = Int(value) { retry = ms }
        default:
            break  // unknown fields are ignored
        }
    }

    /// A blank line: dispatch the event if it has data, then reset the block (not lastEventID).
    private mutating func dispatch(at now: ContinuousClock.Instant) {
        defer {
            eventType = ""
            data = ""
            hasData = false
            blockID = nil
            blockHasFields = false
        }
        guard hasData else { return }
        events.append(SSEEvent(
            event: eventType.isEmpty ? "message" : eventType,
            id: blockID,
            data: String(data.dropLast()),
            receivedAt: now))
    }

    private static func dropOneSpace(_ s: Substring) -> Substring {
        s.first == " " ? s.dropFirst() : s
    }
}
