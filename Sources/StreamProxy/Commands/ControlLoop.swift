import EventLoop
import Glibc
import Logging

/// The main thread's event loop: it waits for SIGINT and SIGTERM while the workers serve, and
/// runs the shutdown sequence.
final class ControlLoop {
    let loop: EventLoop
    private var watchers: [SignalWatcher] = []
    private var ticker: LoopTimer?
    /// Signals received so far.
    private(set) var signals = 0

    /// - Parameter onSignal: runs on the main thread for each SIGINT or SIGTERM.
    init(logger: Logger, onSignal: @escaping (ControlLoop, Int32) -> Void) throws {
        // A parent may have started us with these signals blocked (the mask is inherited):
        // they must reach the handler.
        var handled = sigset_t()
        sigemptyset(&handled)
        sigaddset(&handled, SIGINT)
        sigaddset(&handled, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        loop = try EventLoop()
        for sig in [SIGINT, SIGTERM] {
            watchers.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] signal in
                self.signals += 1
                logger.info("received signal \(signal)")
                onSignal(self, signal)
            })
        }
    }

    /// Runs until ``stop()``.
    func run() {
        loop.run()
        ticker = nil
    }

    func stop() { loop.stop() }

    /// Calls `body` now and every `seconds` until it returns false.
    func repeatEvery(_ seconds: Double, _ body: @escaping () -> Bool) {
        let timer = LoopTimer(loop: loop) { [unowned self] in
            if body() { self.ticker?.schedule(after: seconds) }
        }
        ticker = timer
        if body() { timer.schedule(after: seconds) }
    }
}
