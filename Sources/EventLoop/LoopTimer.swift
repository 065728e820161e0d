import CEvent

/// A one-shot timer on an ``EventLoop``, re-armable.
///
/// The owner holds the timer; releasing it cancels it (there is no fire-and-forget form, so no
/// callback can outlive the object it would call). Capture the owner weakly or unowned in
/// `handler` to avoid a cycle.
public final class LoopTimer {
    private let loop: EventLoop
    private var event: OpaquePointer!
    private let handler: () -> Void

    public init(loop: EventLoop, _ handler: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        self.loop = loop
        self.handler = handler
        self.event = event_new(loop.base, -1, 0, timerCallback, Unmanaged.passUnretained(self).toOpaque())
        precondition(event != nil, "event_new failed")
    }

    deinit {
        event_free(event)
    }

    /// Arms (or re-arms) the timer to fire once after `seconds`.
    public func schedule(after seconds: Double) {
        loop.preconditionInEventLoop()
        var tv = timeval(seconds: seconds)
        event_add(event, &tv)
    }

    /// Disarms the timer; a no-op if it is not armed.
    public func cancel() {
        loop.preconditionInEventLoop()
        event_del(event)
    }

    /// Whether the timer is armed.
    public var isScheduled: Bool {
        event_pending(event, CEvent_EV_TIMEOUT, nil) != 0
    }

    fileprivate func fire() { handler() }
}

private let timerCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<LoopTimer>.fromOpaque(arg!).takeUnretainedValue().fire()
}

extension timeval {
    /// A `timeval` for a non-negative number of seconds.
    public init(seconds: Double) {
        let s = max(0, seconds)
        let whole = s.rounded(.down)
        self.init(tv_sec: Int(whole), tv_usec: Int(((s - whole) * 1_000_000).rounded()))
    }
}
