import EventLoop

/// The open streams of one worker and how the worker winds down: it keeps every session until
/// it finishes (and its response stream until its last bytes are flushed), drains and shuts
/// down, waiting for the flushes as ``FlushPlan`` decides.
///
/// Draining is built for a restart on the same port (a new process listening beside this one
/// with SO_REUSEPORT) and for a load balancer: the listener closes (once the connections queued
/// on it are accepted), so the kernel hands new connections to the other listeners; what this
/// worker has already accepted is served, each connection closing after its response, and
/// /healthz answers 503 on them. The worker is idle once no stream is open and the server is
/// quiet (``HTTPServer/isQuiet``).
final class WorkerLifecycle {
    let loop: EventLoop
    private let server: HTTPServer
    /// Shutting down: no new connections, /healthz says so.
    private(set) var isDraining = false
    /// Open streams, kept alive until they finish.
    private var sessions: [ObjectIdentifier: StreamSession] = [:]
    /// Response streams whose bytes are still queued in this process, kept alive until flushed.
    private var unflushed: [ObjectIdentifier: HTTPResponseStream] = [:]
    /// Told once, when draining and no session is left.
    private var whenIdle: (() -> Void)?
    private var flushPlan: FlushPlan?
    private var flushTimer: LoopTimer?
    private var shutdownCompletion: (() -> Void)?

    init(loop: EventLoop, server: HTTPServer) {
        self.loop = loop
        self.server = server
    }

    /// Keeps `session`, which writes to `stream`, until ``finished(_:)`` is called with the
    /// key returned; the stream stays until it has flushed.
    func adopt(_ session: StreamSession, on stream: HTTPResponseStream) -> ObjectIdentifier {
        loop.preconditionInEventLoop()
        let key = ObjectIdentifier(session)
        sessions[key] = session
        let streamKey = ObjectIdentifier(stream)
        unflushed[streamKey] = stream
        stream.onFlushed = { [unowned self] in self.flushed(streamKey) }
        return key
    }

    /// The session adopted under `key` has finished.
    func finished(_ key: ObjectIdentifier) {
        loop.preconditionInEventLoop()
        sessions[key] = nil
        reportIdleIfDone()
    }

    /// Stops taking new connections; open streams go on, and so do requests on connections
    /// already accepted. `whenIdle` runs once no stream is left and the server is quiet.
    func startDraining(whenIdle: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        self.whenIdle = whenIdle
        server.onQuiet = { [unowned self] in self.reportIdleIfDone() }
        stopAccepting()
        reportIdleIfDone()
    }

    /// Ends every open stream with a `done` that says the server is shutting down, then calls
    /// `completion` once every stream's bytes have been handed to the sockets (or the bound of
    /// ``FlushPlan`` has passed).
    func shutdown(completion: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        whenIdle = nil
        server.onQuiet = nil
        stopAccepting()
        for session in Array(sessions.values) { session.shutdown() }
        let now = ContinuousClock.now
        var plan = FlushPlan(now: now, unflushed: unflushed.count)
        let action = plan.start(now: now)
        flushPlan = plan
        shutdownCompletion = completion
        run(action)
    }

    private func stopAccepting() {
        isDraining = true
        server.stopAccepting()
    }

    private func reportIdleIfDone() {
        guard isDraining, sessions.isEmpty, server.isQuiet else { return }
        reportIdle()
    }

    private func reportIdle() {
        let report = whenIdle
        whenIdle = nil
        report?()
    }

    private func flushed(_ streamKey: ObjectIdentifier) {
        unflushed[streamKey] = nil
        guard var plan = flushPlan else { return }
        let action = plan.flushed(now: .now)
        flushPlan = plan
        run(action)
    }

    private func flushTimerFired() {
        guard var plan = flushPlan else { return }
        let action = plan.timerFired(now: .now)
        flushPlan = plan
        run(action)
    }

    private func run(_ action: FlushPlan.Action) {
        switch action {
        case .finish:
            flushTimer = nil
            let completion = shutdownCompletion
            shutdownCompletion = nil
            completion?()
        case .wait(let deadline):
            let timer = flushTimer ?? LoopTimer(loop: loop) { [unowned self] in self.flushTimerFired() }
            flushTimer = timer
            timer.schedule(after: ContinuousClock.now.duration(to: deadline).seconds)
        case .none:
            break
        }
    }
}
