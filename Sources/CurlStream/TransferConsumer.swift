/// What a transfer reports to its consumer, in this order: `connecting` once it has a
/// connection slot, at most one `head`, any number of `body`, then exactly one `end` or
/// `failed`. After the consumer answers `finish` or `cancel`, or calls
/// ``CurlMulti/cancel(_:)``, it hears nothing more; after `settle`, exactly one of `end`,
/// `failed` or `unsettled`.
public enum TransferEvent {
    /// The transfer has its connection slot and is on its way (its first bytes are still to come).
    case connecting
    case head(TransferHead)
    /// Body bytes as libcurl delivered them (at most 16 KiB); valid only during the call.
    case body(UnsafeRawBufferPointer)
    case end(TransferSummary)
    case failed(TransferError)
    /// The answer to `settle` when the body did not end with what was already there: more body
    /// bytes followed (`moreFollowed`), or libcurl read all it had (the socket too) and found
    /// neither more bytes nor the end. The transfer is then finished as for `finish`.
    case unsettled(moreFollowed: Bool)
}

/// The consumer's answer to a `head` or `body` event, about the transfer that reported it
/// (the answer to other events is ignored).
///
/// Answers replace calls back into the multi from inside its callbacks: libcurl forbids
/// them, and an answer needs none.
public enum TransferDirective: Sendable, Equatable {
    /// Go on.
    case proceed
    /// Not now: a `body` event's bytes are *not* taken, libcurl keeps them and the socket is
    /// no longer read (TCP flow control holds the upstream back) until ``CurlMulti/resume(_:)``,
    /// which delivers them again.
    case pause
    /// The consumer has what it wants (the bytes of this event are taken). A remainder known
    /// to be at most `drainLimit` bytes is read and discarded so the connection can be reused;
    /// otherwise the transfer is cut (libcurl never reuses a connection it aborted).
    case finish
    /// The consumer has what it wants (the bytes of this event are taken) and asks whether the
    /// body ends there. The transfer reports no more bytes, but takes what libcurl processes
    /// until it has read what is already there (libcurl reads on while the socket has data; a
    /// call that stops at libcurl's read cap, or a socket still readable, leaves the verdict to
    /// libcurl's next call); then, outside libcurl's calls, the consumer hears `end` (the body
    /// ended), `failed`, or ``TransferEvent/unsettled(moreFollowed:)``. Bytes held back by a
    /// pause and delivered by ``CurlMulti/resume(_:)`` are settled by the next timer-driven
    /// call, which reads the socket the pause left unread.
    case settle
    /// Stop at once (the bytes of this event are dropped).
    case cancel
}

/// Receives a transfer's events, on the multi's loop. A consumer outlives its transfers, or
/// cancels them before it goes.
public protocol TransferConsumer: AnyObject {
    /// - Parameter tag: what the consumer passed to ``CurlMulti/start(_:consumer:tag:)``.
    func transfer(_ tag: Int, _ event: TransferEvent) -> TransferDirective
}
