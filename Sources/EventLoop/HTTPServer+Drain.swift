import CEvent
import Glibc

/// How the server winds down for a drain (a restart beside a new process on the port, or a
/// load balancer taking it out): no connection it was handed is lost, none new comes in.
extension HTTPServer {
    /// Stops taking connections, for a drain: the listener closes once its accept queue is
    /// empty, so that no connection the kernel queued for this process is reset (see
    /// ``closeListenerWhenQueueEmpty``); from then on every connection closes after its current
    /// response (idle ones at once), and a response started from now on says `Connection:
    /// close`. ``isQuiet`` then tells when nothing is left that could bring a new request.
    public func stopAccepting() {
        loop.preconditionInEventLoop()
        guard !isClosing else { return }
        isClosing = true
        for record in connections.values { record.stream?.closeConnectionAfterward() }
        for guardian in guards.values where guardian.isIdle { guardian.shutdownOutput() }
        closeListenerWhenQueueEmpty(deadline: .now + .seconds(1))
    }

    /// Whether the server was told to stop accepting, its listener has closed and every
    /// connection it accepted has brought its first request or gone (a connection accepted
    /// from the queue during the drain is served). A connection that never sends one counts
    /// until it leaves or its request-header deadline passes.
    public var isQuiet: Bool { isClosing && boundSocket == nil && firstRequestDeadlines.connections.isEmpty }

    /// Closes the listener, unless connections are waiting in its accept queue: those libevent
    /// accepts in this or the next loop turn, and the check runs again. Closing a listener resets
    /// the connections queued on it; with SO_REUSEPORT the kernel sends new connections to the
    /// group's other listeners (a new process on the port) only once it is closed. What can
    /// still be lost is a connection queued between the last check and the close, a window of
    /// microseconds, which `net.ipv4.tcp_migrate_req=1` closes (the kernel then moves it to
    /// another listener of the group). `deadline` bounds the wait under a stream of connections.
    private func closeListenerWhenQueueEmpty(deadline: ContinuousClock.Instant) {
        guard let bound = boundSocket else { return }
        var queued = pollfd(fd: evhttp_bound_socket_get_fd(bound), events: Int16(POLLIN), revents: 0)
        if poll(&queued, 1, 0) > 0, ContinuousClock.now < deadline {
            listenerCheck = LoopTimer(loop: loop) { [unowned self] in self.closeListenerWhenQueueEmpty(deadline: deadline) }
            listenerCheck?.schedule(after: 0)
            return
        }
        listenerCheck = nil
        boundSocket = nil
        evhttp_del_accept_socket(http, bound)
        reportIfQuiet()
    }

    /// Tells ``onQuiet`` once the drain has nothing left (``isQuiet``).
    func reportIfQuiet() {
        if isQuiet { onQuiet?() }
    }
}
