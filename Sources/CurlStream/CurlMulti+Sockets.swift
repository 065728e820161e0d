import CCurl
import CEvent
import EventLoop

/// The multi-socket plumbing: libcurl says which sockets to watch and when to wake it; libevent
/// watches; readiness and timeouts go back to `curl_multi_socket_action`.
extension CurlMulti {

    func watch(_ fd: curl_socket_t, _ what: Int32, for easy: UnsafeMutableRawPointer?) {
        noteSocket(fd, watched: what != CURL_POLL_REMOVE, for: easy)
        if what == CURL_POLL_REMOVE {
            if let event = sockets.removeValue(forKey: fd) { event_free(event) }
            return
        }
        socketInUse(fd, by: easy)
        var flags = CEvent_EV_PERSIST
        if what & CURL_POLL_IN != 0 { flags |= CEvent_EV_READ }
        if what & CURL_POLL_OUT != 0 { flags |= CEvent_EV_WRITE }
        let me = Unmanaged.passUnretained(self).toOpaque()
        if let event = sockets[fd] {
            event_del(event)
            event_assign(event, loop.base, fd, flags, curlSocketReady, me)
            event_add(event, nil)
        } else if let event = event_new(loop.base, fd, flags, curlSocketReady, me) {
            sockets[fd] = event
            event_add(event, nil)
        }
    }

    func setTimer(_ milliseconds: Int) {
        curlDueAtOnce = milliseconds == 0
        if milliseconds < 0 {
            event_del(timerEvent)
        } else {
            var tv = timeval(seconds: Double(milliseconds) / 1000)
            event_add(timerEvent, &tv)
        }
    }

    func timerFired() {
        curlDueAtOnce = false
        socketAction(CCurl_SOCKET_TIMEOUT, 0)
    }
}

let socketCallback: curl_socket_callback = { easy, fd, what, userp, _ in
    Unmanaged<CurlMulti>.fromOpaque(userp!).takeUnretainedValue().watch(fd, what, for: easy)
    return 0
}

let timerCallback: curl_multi_timer_callback = { _, milliseconds, userp in
    Unmanaged<CurlMulti>.fromOpaque(userp!).takeUnretainedValue().setTimer(milliseconds)
    return 0
}

let curlSocketReady: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { fd, events, arg in
    var flags: Int32 = 0
    if events & CEvent_EV_READ != 0 { flags |= CURL_CSELECT_IN }
    if events & CEvent_EV_WRITE != 0 { flags |= CURL_CSELECT_OUT }
    Unmanaged<CurlMulti>.fromOpaque(arg!).takeUnretainedValue().socketAction(fd, flags)
}

let curlTimerFired: @convention(c) (Int32, Int16, UnsafeMutableRawPointer?) -> Void = { _, _, arg in
    Unmanaged<CurlMulti>.fromOpaque(arg!).takeUnretainedValue().timerFired()
}
