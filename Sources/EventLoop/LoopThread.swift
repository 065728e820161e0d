import Foundation

/// Starts a thread that owns a new ``EventLoop`` and an `Owner` object built on it, then runs
/// the loop until it is stopped.
///
/// The owner (a server, a worker) lives and dies on the loop's thread; other threads reach it
/// only through ``execute(_:)``, which runs a closure on the loop with the owner in hand. The
/// caller gets back a Sendable `Info` that `setUp` chose to publish.
public final class LoopThread<Owner: AnyObject, Info: Sendable>: Sendable {
    private let handle: EventLoopHandle
    public let info: Info
    private let finished = PthreadLock(false)
    private let done = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - name: the thread's name, as shown by `top -H`.
    ///   - setUp: runs on the new thread before the loop starts; returns the owner and `Info`.
    ///     An error it throws is rethrown here and the thread ends.
    public init(name: String, setUp: @escaping @Sendable (EventLoop) throws -> (owner: Owner, info: Info)) throws {
        let ready = DispatchSemaphore(value: 0)
        let result = PthreadLock<Result<(EventLoopHandle, Info), any Error>?>(nil)
        let done = self.done
        let thread = Thread {
            defer { done.signal() }
            let loop: EventLoop
            do {
                loop = try EventLoop()
                let (owner, info) = try setUp(loop)
                loop.owner = owner
                result.withLock { $0 = .success((loop.handle, info)) }
            } catch {
                result.withLock { $0 = .failure(error) }
                ready.signal()
                return
            }
            ready.signal()
            loop.run()
            // Release the owner (and everything attached to the loop) before the loop itself.
            loop.owner = nil
        }
        thread.name = name
        thread.start()
        ready.wait()
        let (handle, info) = try result.withLock { $0! }.get()
        self.handle = handle
        self.info = info
    }

    /// Runs `work` on the loop thread with the owner. Returns false once the loop is gone.
    @discardableResult
    public func execute(_ work: @escaping @Sendable (Owner) -> Void) -> Bool {
        handle.executeWithLoop { loop in
            if let owner = loop.owner as? Owner { work(owner) }
        }
    }

    /// Stops the loop and waits until the thread has released the owner and the loop.
    /// Idempotent.
    ///
    /// - Parameter windDown: runs on the loop first, with the owner and a `stop` to call once the
    ///   owner has wound down (it may call it later, from a callback). Without it the loop stops
    ///   at once.
    public func stopAndJoin(windDown: (@Sendable (Owner, _ stop: @escaping () -> Void) -> Void)? = nil) {
        let first = finished.withLock { f -> Bool in
            defer { f = true }
            return !f
        }
        guard first else { return }
        handle.executeWithLoop { loop in
            if let windDown, let owner = loop.owner as? Owner {
                windDown(owner) { [unowned loop] in loop.stop() }
            } else {
                loop.stop()
            }
        }
        done.wait()
    }
}
