import CCurl
import Glibc

/// Ending a transfer whose consumer has what it wants: drain or cut, and the `settle` verdict
/// (did the body end within the libcurl call that filled the consumer?).
extension Transfer {
    /// Body bytes on the wire so far: before content decoding, after de-chunking (libcurl's
    /// download counter, which counts a read before handing its decoded bytes to the write
    /// callback). The drain decision compares these with Content-Length, a wire length.
    var wireBytes: Int64 {
        guard let easy else { return 0 }
        var value: curl_off_t = 0
        _ = CCurl_easy_getinfo_off_t(easy, CURLINFO_SIZE_DOWNLOAD_T, &value)
        return Int64(value)
    }

    /// The response's `Content-Encoding`, lowercased; nil for none or `identity`.
    var contentEncoding: String? {
        guard let coding = contentCoding, !coding.isEmpty, coding != "identity" else { return nil }
        return coding
    }

    /// Keeps the first `Content-Encoding` of the response (as libcurl's header API would give it).
    func noteContentEncoding(_ line: UnsafeRawBufferPointer) {
        guard contentCoding == nil, let value = HeaderLine.value(of: "content-encoding", in: line) else { return }
        contentCoding = String(decoding: value.map(HeaderLine.lowercased), as: UTF8.self)
    }

    /// The consumer is done (its `reporting` is the caller's business): a remainder known to
    /// be at most `drainLimit` wire bytes is read and discarded so the connection can be
    /// reused; otherwise the transfer is cut.
    func drainOrCut() {
        switch state {
        case .running, .settling:
            // An HTTP/2 stream is reset alone (RST_STREAM) and its connection kept (lib/multi.c
            // multi_done closes after a premature end only what is not multiplexed): draining
            // would save nothing.
            if !multiplexed, let length = contentLength, length - wireBytes <= Int64(multi.options.drainLimit) {
                state = .draining
                multi.counters.drained.increment()
            } else {
                abort()
            }
        case .queued, .draining, .aborting:
            return
        }
    }

    /// The consumer answered `settle`: it keeps hearing from the transfer (its verdict is to come).
    func beginSettle() {
        guard case .running = state else { return }
        state = .settling
        settleAfterTimer = multi.resuming
        multi.settling.append(self)
    }

    /// Body bytes arrived after the consumer settled, inside libcurl's call: the body went on.
    /// Returns what the write callback answers.
    func overranSettle(_ count: Int) -> Int {
        multi.notices.append((self, .unsettled(moreFollowed: true)))
        drainOrCut()
        return state == .draining || multiplexed ? count : 0
    }

    /// Whether the transfer's socket has bytes libcurl has not read yet, or its peer's end of
    /// the stream (libcurl's next read then sees the body end).
    var socketReadable: Bool {
        guard watchedSocket != CCurl_SOCKET_BAD else { return false }
        var entry = pollfd(fd: watchedSocket, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0 && entry.revents != 0
    }
}

extension CurlMulti {
    /// After a libcurl call: a transfer still settling heard neither more bytes nor its end.
    /// That means nothing more of its body was there only once libcurl has read all it had:
    /// libcurl reads while the socket is readable, but at most 101 reads (`receiveBufferSize`
    /// each) per call, then leaves the rest (on the socket, or in TLS's buffer) to a call it
    /// asks for at once by its timer. So a verdict waits
    /// - for the first timer-driven call (`timerRun`) when the settle began inside
    ///   ``resume(_:)`` or libcurl asked to be called at once: that call reads on;
    /// - while the transfer's socket is still readable: its next call reads it.
    /// Otherwise its consumer hears that nothing more followed, and it is drained or cut.
    func resolveSettles(timerRun: Bool) {
        guard !settling.isEmpty else { return }
        var waiting: [Transfer] = []
        for t in settling {
            guard case .settling = t.state, transfers[t.id] === t else { continue }
            if t.settleAfterTimer && !timerRun {
                waiting.append(t)
                continue
            }
            if !t.settleAfterTimer && curlDueAtOnce {
                t.settleAfterTimer = true
                waiting.append(t)
                continue
            }
            // An HTTP/2 connection's socket carries other streams too, which may keep it
            // readable for good; libcurl reads it whole in each call anyway.
            if !t.multiplexed, t.socketReadable {
                waiting.append(t)
                continue
            }
            notices.append((t, .unsettled(moreFollowed: false)))
            t.drainOrCut()
            // Cut outside libcurl's callbacks: libcurl does not know; take it off now.
            if case .aborting = t.state { remove(t) }
        }
        settling = waiting
    }

    /// libcurl watches `fd` for `easy`'s transfer, or no longer does: the transfer's socket.
    func noteSocket(_ fd: curl_socket_t, watched: Bool, for easy: UnsafeMutableRawPointer?) {
        guard let easy else { return }
        var raw: UnsafeMutablePointer<CChar>?
        _ = CCurl_easy_getinfo_string(easy, CURLINFO_PRIVATE, &raw)
        guard let raw else { return }
        let t = Unmanaged<Transfer>.fromOpaque(UnsafeRawPointer(raw)).takeUnretainedValue()
        if watched {
            t.watchedSocket = fd
        } else if t.watchedSocket == fd {
            t.watchedSocket = CCurl_SOCKET_BAD
        }
    }
}
