import CEvent
import Glibc

/// libevent must be told to use pthread locks before any `event_base` exists, so that
/// `event_active` from another thread (the only cross-thread call we make) wakes the loop.
private let threadingEnabled: Bool = evthread_use_pthreads() == 0

/// One libevent `event_base`, driven by exactly one thread.
///
/// Every libevent, libcurl and application object attached to a loop is touched only on that
/// loop's thread: the loop is deliberately not `Sendable`. Other threads talk to it through its
/// ``handle`` (see ``EventLoopHandle``), which queues closures to run on the loop.
public final class EventLoop {
    /// The `event_base`. Owned by the loop; freed in `deinit` after every attached object is gone.
    public let base: OpaquePointer
    private let thread: pthread_t
    private let mailbox: Mailbox
    /// The cross-thread entry point to this loop.
    public let handle: EventLoopHandle
    /// The object that owns what is attached to this loop (set by ``LoopThread``), released
    /// on the loop's thread before the loop.
    public var owner: AnyObject?

    /// Creates a loop owned by the calling thread.
    ///
    /// - Parameter preciseTimers: timers fire to the microsecond (a `timerfd` under epoll)
    ///   instead of rounded up to the next millisecond. For load generators that keep a schedule;
    ///   it costs a system call per loop turn.
    public init(preciseTimers: Bool = false) throws(EventError) {
        precondition(threadingEnabled, "evthread_use_pthreads failed")
        guard let base = Self.makeBase(preciseTimers: preciseTimers) else { throw EventError("event_base_new") }
        self.base = base
        self.thread = pthread_self()
        let mailbox = Mailbox()
        guard let wake = event_new(base, -1, 0, mailboxCallback, Unmanaged.passUnretained(mailbox).toOpaque()) else {
            event_base_free(base)
            throw EventError("event_new")
        }
        mailbox.attach(WakeEvent(raw: wake))
        self.mailbox = mailbox
        self.handle = EventLoopHandle(mailbox: mailbox)
        mailbox.loop = self
    }

    /// An `event_base` whose epoll backend batches interest changes: libcurl and evhttp drop and
    /// re-add a socket's interest several times per transfer (a connection goes back to the cache
    /// and is picked up again in the same turn), and the change list turns each such pair into one
    /// `epoll_ctl` or none at all, made just before the loop waits. The caveat libevent documents
    /// (descriptors cloned with `dup`) does not apply: nothing here dups a socket.
    private static func makeBase(preciseTimers: Bool) -> OpaquePointer? {
        guard let config = event_config_new() else { return nil }
        defer { event_config_free(config) }
        _ = event_config_set_flag(config, Int32(EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST.rawValue))
        if preciseTimers { _ = event_config_set_flag(config, Int32(EVENT_BASE_FLAG_PRECISE_TIMER.rawValue)) }
        return event_base_new_with_config(config)
    }

    deinit {
        mailbox.close()
        event_base_free(base)
    }

    /// Whether the caller runs on this loop's thread.
    public var inEventLoop: Bool { pthread_equal(thread, pthread_self()) != 0 }

    /// Traps unless called on the loop's thread. For public entry points (always on).
    @inline(__always)
    public func preconditionInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        precondition(inEventLoop, "called off the event loop's thread", file: file, line: line)
    }

    /// Like ``preconditionInEventLoop(file:line:)`` but checked in debug builds only; for hot paths.
    @inline(__always)
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "called off the event loop's thread", file: file, line: line)
    }

    /// Runs the loop until ``stop()`` is called.
    public func run() {
        preconditionInEventLoop()
        // The loop stays up while idle: work may still arrive through the handle.
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY)
    }

    /// Makes ``run()`` return after the current callbacks finish.
    public func stop() {
        preconditionInEventLoop()
        event_base_loopbreak(base)
    }
}

/// A `Sendable` way to hand work to a loop from any thread.
///
/// Closures are queued under a mutex and the loop is woken with `event_active`; they run on the
/// loop's thread in submission order. After the loop is gone, ``executeWithLoop(_:)`` returns
/// `false`. This is for rare hand-offs (start-up, shutdown, cross-worker notices), never the hot
/// path; ``LoopThread`` and ``LoopBound`` wrap it with the object the work is for.
public struct EventLoopHandle: Sendable {
    fileprivate let mailbox: Mailbox

    /// Queues `work` to run on the loop, handing it the loop. Returns `false` if the loop no
    /// longer exists.
    @discardableResult
    public func executeWithLoop(_ work: @escaping @Sendable (EventLoop) -> Void) -> Bool {
        mailbox.post(work)
    }
}

/// The loop's wake-up event. libevent (with pthread locking enabled) allows `event_active` on it
/// from any thread; nothing else is done with it off the loop.
struct WakeEvent: @unchecked Sendable {
    let raw: OpaquePointer
}

final class Mailbox: Sendable {
    private struct State {
        var wake: WakeEvent?
        var queue: [@Sendable (EventLoop) -> Void] = []
        var closed = false
    }
    private let state = PthreadLock(State())
    /// Set once by the loop, read only on the loop thread in `drain`; the loop closes the
    /// mailbox before it goes away.
    nonisolated(unsafe) unowned(unsafe) var loop: EventLoop?
    func attach(_ wake: WakeEvent) {
        state.withLock { $0.wake = wake }
    }

    func post(_ work: @escaping @Sendable (EventLoop) -> Void) -> Bool {
        state.withLock { s in
            guard !s.closed, let wake = s.wake else { return false }
            let first = s.queue.isEmpty
            s.queue.append(work)
            if first { event_active(wake.raw, Int32(CEvent_EV_TIMEOUT), 0) }
            return true
        }
    }

    /// Runs on the loop thread when the wake event fires.
    func drain() {
        let work = state.withLock { s -> [@Sendable (EventLoop) -> Void] in
            let w = s.queue
            s.queue.removeAll(keepingCapacity: true)
            return w
        }
        guard let loop else { return }
        for job in work { job(loop) }
    }

    func close() {
        let wake = state.withLock { s -> WakeEvent? in
            s.closed = true
            s.queue.removeAll()
            defer { s.wake = nil }
            return s.wake
        }
        if let wake { event_free(wake.raw) }
    }
}

private let mailboxCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<Mailbox>.fromOpaque(arg!).takeUnretainedValue().drain()
}
