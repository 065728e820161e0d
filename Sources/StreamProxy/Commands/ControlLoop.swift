import EventLoop
import Glibc
import Logging

/// The main thread's event loop: it waits for SIGINT and SIGTERM while the workers serve, and
/// runs the graceful shutdown that ``ShutdownPlan`` decides: the first signal drains, the second
/// stops at once, and so do the end of the last stream and the end of the grace.
///
/// Make it before anything listens: from its `init` on, a signal is caught (and kept until
/// ``run(drain:)``), so a SIGTERM sent as soon as the port answers drains instead of killing
/// the process with the signal's default action.
final class ControlLoop {
    typealias Drain = (_ whenIdle: @escaping @Sendable () -> Void) -> Void

    let loop: EventLoop
    private var watchers: [SignalWatcher] = []
    private var plan: ShutdownPlan
    private var graceTimer: LoopTimer?
    /// Set by ``run(drain:)``; signals are handled only inside it.
    private var drain: Drain?

    /// Catches SIGINT and SIGTERM from here on; `grace` is how long open streams get to finish
    /// after the first signal.
    init(grace: Duration, logger: Logger) throws {
        // A parent may have started us with these signals blocked (the mask is inherited):
        // they must reach the handler.
        var handled = sigset_t()
        sigemptyset(&handled)
        sigaddset(&handled, SIGINT)
        sigaddset(&handled, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        loop = try EventLoop()
        plan = ShutdownPlan(grace: grace)
        for sig in [SIGINT, SIGTERM] {
            watchers.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] signal in
                logger.info("received signal \(signal)")
                self.run(self.plan.signal(now: .now))
            })
        }
    }

    /// Runs until the plan says stop, handling the signals caught since `init` too. `drain` runs
    /// on this thread at the first signal; it starts draining and calls `whenIdle` (from any
    /// thread) once no stream is open.
    func run(drain: @escaping Drain) {
        loop.preconditionInEventLoop()
        self.drain = drain
        loop.run()
        self.drain = nil
        graceTimer = nil
    }

    private func run(_ action: ShutdownPlan.Action) {
        switch action {
        case .drain(let deadline):
            arm(until: deadline)
            let me = LoopBound(self, loop: loop)
            drain? { me.execute { $0.run($0.plan.streamsEnded(now: .now)) } }
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
