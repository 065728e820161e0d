import Glibc

/// A value behind a pthread mutex, with the `withLock` of `Synchronization.Mutex`.
///
/// Why not `Mutex`: on Linux its contended path hands the lock over inside the kernel (a
/// priority-inheritance futex, called from the uninstrumented runtime), which ThreadSanitizer
/// cannot see, so `make test-tsan` reported races between two critical sections of one lock
/// (the mailbox, when a shutdown's post met the loop's drain). ThreadSanitizer understands
/// pthread mutexes. For locks off the hot path.
public final class PthreadLock<Value: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// Touched only with `mutex` held.
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
