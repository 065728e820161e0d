/// Writing a session's events: at once, or held for their turn in sequential order.
extension FanOutSession {
    /// Writes (or holds, in sequential order, until upstream `i`'s turn) one event.
    mutating func emit(_ name: SSEEventName, from i: Int, into out: inout SessionOutput,
                       data write: (inout JSONWriter) -> Void) {
        if settings.order == .sequential && i != turn {
            var w = JSONWriter()
            write(&w)
            hold(name, w.bytes, for: i)
        } else {
            sse.event(name, into: &out.frames, data: write)
            wrote()
        }
    }

    /// A `chunk` of upstream `i` whose escaped text is in `out.text`.
    mutating func emitChunk(from i: Int, into out: inout SessionOutput) {
        out.bytesForwarded += out.text.count
        let text = out.text
        emit(.chunk, from: i, into: &out) { w in
            w.raw(#"{"i":"#)
            w.int(i)
            w.raw(#","text":""#)
            w.bytes.append(contentsOf: text)
            w.raw(#""}"#)
        }
    }

    /// Sequential order: hands the turn to the next unfinished upstream, writing what each
    /// upstream on the way had held.
    mutating func advanceTurn(into out: inout SessionOutput) {
        while turn < upstreams.count && !upstreams[turn].isOpen {
            turn += 1
            guard turn < upstreams.count else { break }
            for item in takeHeld(turn) {
                sse.event(item.name, data: item.data, into: &out.frames)
                wrote()
            }
        }
    }

    /// Something was written to the client now: the heartbeat's silence starts over.
    mutating func wrote() {
        lastWrite = now
    }
}

/// What a ``FanOutSession`` asks its owner to do after an event. One per worker is reused by
/// every session on it (an event's output is acted on before the next event), so steady
/// streaming allocates nothing.
package struct SessionOutput {
    /// SSE bytes to write to the client, in order.
    package var frames: [UInt8] = []
    /// Upstreams to start or stop. Never produced by an upstream's own event (that is
    /// answered with a directive), so the owner runs them outside the transfer layer's calls.
    package var commands: [FanOutSession.Command] = []
    /// Arm the session's timer for this instant.
    package var wake: ContinuousClock.Instant?
    /// The stream is over.
    package var end: FanOutSession.End?
    /// For metrics: escaped text bytes forwarded, and a time to first byte observed.
    package var bytesForwarded = 0
    package var ttfbMilliseconds: Double?
    /// Where a chunk's escaped text is built.
    package var text: [UInt8] = []
    /// Where a chunk's text converted to UTF-8 from another charset is built.
    package var converted: [UInt8] = []

    package init() {
        frames.reserveCapacity(16 * 1024)
        text.reserveCapacity(4 * 1024)
    }
}
