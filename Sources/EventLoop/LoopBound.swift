import Glibc

/// A reference to an object that belongs to one loop, carried through another thread.
///
/// Cross-worker notices (see ``execute(_:)``) must name the loop-side object they are for, and
/// such objects are deliberately not `Sendable`. This box may travel anywhere, but its
/// value can only be read on the loop that owns it. It holds the object weakly: a notice that
/// arrives after its target is gone finds nil and does nothing.
public struct LoopBound<Value: AnyObject>: @unchecked Sendable {
    private weak var stored: Value?
    private let loop: EventLoopHandle
    private let owner: EventLoopOwnerCheck

    /// Must be made on `loop`'s thread.
    public init(_ value: Value, loop: EventLoop) {
        loop.preconditionInEventLoop()
        stored = value
        self.loop = loop.handle
        owner = EventLoopOwnerCheck()
    }

    /// The object, or nil once it is gone. Traps off the owning loop's thread.
    public var value: Value? {
        owner.precondition()
        return stored
    }

    /// Runs `work` on the owning loop with the object, if the loop and the object still exist.
    @discardableResult
    public func execute(_ work: @escaping @Sendable (Value) -> Void) -> Bool {
        let me = self
        return loop.executeWithLoop { _ in if let v = me.value { work(v) } }
    }
}

/// Remembers the calling (loop) thread so that another thread can be refused.
struct EventLoopOwnerCheck: @unchecked Sendable {
    private let thread: pthread_t

    init() { thread = pthread_self() }

    func precondition(file: StaticString = #fileID, line: UInt = #line) {
        Swift.precondition(pthread_equal(thread, pthread_self()) != 0, "LoopBound read off its loop's thread",
                           file: file, line: line)
    }
}
