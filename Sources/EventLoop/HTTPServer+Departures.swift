import CEvent

// How the server hears that a client connection has gone, from the loop turn of its accept on.
//
// evhttp tells of a connection's end only through the connection's close callback, and hands
// out the connection (`evhttp_connection`) only with its first request. A connection that
// leaves before sending one (a load balancer's TCP check, a port scan, a client that gave up)
// would otherwise go unnoticed until its request deadline: its descriptor stays open (the
// deadline holds a reference to its bufferevent) and a drain waits for it (``isQuiet``), for up
// to `requestHeaderTimeout` each. So the server takes the close callback of every connection
// in the turn it is accepted. evhttp makes the connection right after the bufferevent
// callback, and sets itself as the argument of the bufferevent's callbacks: that is where the
// server finds it.
extension HTTPServer {
    /// Makes `conn`'s close callback this server's (once).
    func watchClose(of conn: OpaquePointer) {
        guard closeWatched.insert(conn).inserted else { return }
        evhttp_connection_set_closecb(conn, closeCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    /// The event that runs ``claimAccepted()`` once activated (by a turn's first accept).
    func makeClaimEvent() -> OpaquePointer? {
        event_new(loop.base, -1, 0, claimCallback, Unmanaged.passUnretained(self).toOpaque())
    }

    /// The turn's accepted connections, now that evhttp has made them: each gets the close
    /// callback, unless evhttp has already freed it (its bufferevent has no callbacks left, and
    /// only the deadline's reference keeps it), which counts as closed now.
    fileprivate func claimAccepted() {
        let accepted = unclaimed
        unclaimed.removeAll(keepingCapacity: true)
        for bev in accepted where firstRequestDeadlines.isAwaiting(bev) {
            var eventCallback: bufferevent_event_cb?
            var argument: UnsafeMutableRawPointer?
            bufferevent_getcb(bev, nil, nil, &eventCallback, &argument)
            if eventCallback != nil, let argument {
                // libevent 2.1's http.c (evhttp_connection_base_bufferevent_new and every later
                // bufferevent_setcb of a connection) passes the connection as the argument.
                let conn = OpaquePointer(argument)
                assert(evhttp_connection_get_bufferevent(conn) == bev, "a bufferevent's argument is not its evhttp_connection")
                watchClose(of: conn)
            } else {
                forget(bev)
            }
        }
        if isClosing { reportIfQuiet() }
    }

    /// evhttp is freeing `conn` (the client closed, a read or write failed, or the response
    /// ended with `Connection: close`): the server forgets it, and a stream on it ends.
    fileprivate func connectionClosed(_ conn: OpaquePointer) {
        loop.assertInEventLoop()
        closeWatched.remove(conn)
        if let bev = evhttp_connection_get_bufferevent(conn) { forget(bev) }
        if let record = connections.removeValue(forKey: conn) { record.stream?.clientClosed() }
        if isClosing { reportIfQuiet() }
    }

    /// Drops the guard of `bev` and, if it is still under its request deadline, the deadline
    /// and the deadline's reference (evhttp holds its own until it has freed the connection).
    private func forget(_ bev: OpaquePointer) {
        guards.removeValue(forKey: bev)?.detach()
        if firstRequestDeadlines.closed(bev) { bufferevent_decref(bev) }
    }
}

private let claimCallback: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<HTTPServer>.fromOpaque(arg!).takeUnretainedValue().claimAccepted()
}

private let closeCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Void = { conn, arg in
    guard let conn else { return }
    Unmanaged<HTTPServer>.fromOpaque(arg!).takeUnretainedValue().connectionClosed(conn)
}
