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
    /// Joined by ``stopAndJoin(windDown:)``: a thread's exit runs its thread-local destructors
    /// (OpenSSL frees its per-thread state there), so the process never exits while they are
    /// still to run, and LeakSanitizer never sees that state as leaked.
    private let thread: pthread_t

    /// - Parameters:
    ///   - name: the thread's name, as shown by `top -H`.
    ///   - setUp: runs on the new thread before the loop starts; returns the owner and `Info`.
    ///     An error it throws is rethrown here and the thread ends.
    public init(name: String, setUp: @escaping @Sendable (EventLoop) throws -> (owner: Owner, info: Info)) throws {
        let ready = DispatchSemaphore(value: 0)
        let result = PthreadLock<Result<(EventLoopHandle, Info), any Error>?>(nil)
        let body = ThreadBody {
            Thread.current.name = name
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
        var thread = pthread_t()
        let context = Unmanaged.passRetained(body).toOpaque()
        guard pthread_create(&thread, nil, runThreadBody, context) == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(context).release()
            throw EventError("pthread_create")
        }
        self.thread = thread
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
        pthread_join(thread, nil)
    }
}

/// What a ``LoopThread``'s pthread runs.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

private let runThreadBody: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { context in
    Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue().run()
    return nil
}
