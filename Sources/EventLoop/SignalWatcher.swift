import CEvent
import Glibc

/// Runs a handler on the loop's thread each time a signal arrives.
///
/// libevent delivers a signal to one `event_base` only: watch signals from a single loop (the
/// process's control loop) and hand the news to workers through their handles.
public final class SignalWatcher {
    private let loop: EventLoop
    private var event: OpaquePointer!
    private let handler: (Int32) -> Void
    public let signal: Int32

    public init(loop: EventLoop, signal: Int32, _ handler: @escaping (Int32) -> Void) throws(EventError) {
        loop.preconditionInEventLoop()
        self.loop = loop
        self.signal = signal
        self.handler = handler
        guard let ev = event_new(loop.base, signal, CEvent_EV_SIGNAL | CEvent_EV_PERSIST, signalCallback,
                                 Unmanaged.passUnretained(self).toOpaque()) else { throw EventError("event_new(signal)") }
        self.event = ev
        guard event_add(ev, nil) == 0 else { throw EventError("event_add(signal)") }
    }

    deinit {
        if let event { event_free(event) }
    }

    fileprivate func fire() { handler(signal) }
}

private let signalCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<SignalWatcher>.fromOpaque(arg!).takeUnretainedValue().fire()
}
