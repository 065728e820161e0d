import EventLoop
import Glibc
import Logging

/// The main thread's event loop: it waits for SIGINT and SIGTERM while the workers serve, and
/// runs the graceful shutdown that ``ShutdownPlan`` decides: the first signal drains, the second
/// stops at once, and so do the end of the last stream and the end of the grace.
final class ControlLoop {
    let loop: EventLoop
    private var watchers: [SignalWatcher] = []
    private var plan: ShutdownPlan
    private var graceTimer: LoopTimer?
    private let drain: (_ whenIdle: @escaping @Sendable () -> Void) -> Void

    /// - Parameters:
    ///   - grace: how long open streams get to finish after the first signal.
    ///   - drain: runs on the main thread at the first signal; it starts draining and calls
    ///     `whenIdle` (from any thread) once no stream is open.
    init(grace: Duration, logger: Logger, drain: @escaping (_ whenIdle: @escaping @Sendable () -> Void) -> Void) throws {
        // A parent may have started us with these signals blocked (the mask is inherited):
        // they must reach the handler.
        var handled = sigset_t()
        sigemptyset(&handled)
        sigaddset(&handled, SIGINT)
        sigaddset(&handled, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        loop = try EventLoop()
        plan = ShutdownPlan(grace: grace)
        self.drain = drain
        for sig in [SIGINT, SIGTERM] {
            watchers.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] signal in
                logger.info("received signal \(signal)")
                self.run(self.plan.signal(now: .now))
            })
        }
    }

    /// Runs until the plan says stop.
    func run() {
        loop.preconditionInEventLoop()
        loop.run()
        graceTimer = nil
    }

    private func run(_ action: ShutdownPlan.Action) {
        switch action {
        case .drain(let deadline):
            arm(until: deadline)
            let me = LoopBound(self, loop: loop)
            drain { me.execute { $0.run($0.plan.streamsEnded(now: .now)) } }
        case .wait(let deadline):
            arm(until: deadline)
        case .stop:
            graceTimer?.cancel()
            loop.stop()
        case .none:
            break
        }
    }

    private func arm(until deadline: ContinuousClock.Instant) {
        let timer = graceTimer ?? LoopTimer(loop: loop) { [unowned self] in self.run(self.plan.timerFired(now: .now)) }
        graceTimer = timer
        timer.schedule(after: ContinuousClock.now.duration(to: deadline).seconds)
    }
}
