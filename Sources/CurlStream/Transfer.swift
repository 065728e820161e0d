import CCurl
import EventLoop
import Glibc

/// One upstream fetch on a ``CurlMulti``: its easy handle, its state, its consumer.
///
/// Owned by the multi's transfer table from ``CurlMulti/start(_:consumer:tag:)`` until it is
/// removed; libcurl's callbacks reach it through an unretained pointer that is valid for
/// exactly that long (the easy handle leaves the multi before the table lets go).
final class Transfer {
    enum State {
        /// Waiting for a connection slot (the deadline is the pool's).
        case queued
        /// On the multi handle, reporting to the consumer.
        case running
        /// The consumer answered `settle`: what libcurl processes in the same call is taken
        /// without being reported, until the body ends or more of it arrives (the verdict).
        case settling
        /// The consumer is done; a small known remainder is read and discarded for reuse.
        case draining
        /// The consumer is done or gone; the transfer is being cut and reports nothing.
        case aborting
    }

    let id: TransferID
    /// What is fetched now: the route's URL, or the target of a redirect being followed.
    var request: TransferRequest
    /// The local id of `request.hostKey` (see ``PoolStateMachine``).
    var host = 0
    /// Sockets this transfer opened or was seen using (see ``ConnectionLedger``).
    var fds: [curl_socket_t] = []
    /// libcurl wanted a new connection for this transfer and no lease was free (it had been
    /// admitted to reuse an idle one that turned out dead or taken): it goes back to the queue.
    var leaseDenied = false
    /// Whether the pool has been told if this transfer reused a connection.
    var reuseReported = false
    /// SO_RCVBUF for sockets this transfer opens; set by the multi.
    var receiveBuffer: Int32 = 64 * 1024
    /// The multi the transfer runs on; it outlives every transfer in its table.
    unowned(unsafe) var multi: CurlMulti!
    var state: State
    unowned let consumer: TransferConsumer
    let tag: Int
    /// Whether the consumer still hears from this transfer (false once it finished, cancelled,
    /// or heard the end).
    var reporting = true
    /// Set by `attach`, taken back by `detachEasy`.
    var easy: UnsafeMutableRawPointer?
    /// libcurl writes its detailed error text here (CURLOPT_ERRORBUFFER).
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    var headSent = false
    /// The first `Content-Encoding` of the response being read, lowercased (nil: none yet).
    var contentCoding: String?
    var contentLength: Int64?
    var bytesReceived: Int64 = 0
    /// The host's lookup and what libcurl was told of its addresses (CurlMulti+Resolve).
    var dns = TransferDNS()
    /// Redirects followed, and the one this response asks for (Transfer+Redirect).
    var redirect = RedirectState()
    /// The response came in HTTP/2 (known at the head): its connection carries other transfers,
    /// so a `finish` never drains it but resets the stream alone.
    var multiplexed = false
    /// libcurl holds the transfer paused (the consumer answered `pause`; libcurl keeps the
    /// bytes it refused and stops reading the socket).
    var pausedInCurl = false
    /// The settle's verdict waits for the next timer-driven call, which reads what libcurl
    /// left unread: the settle began inside ``CurlMulti/resume(_:)``, or libcurl stopped at its
    /// read cap (see ``CurlMulti/resolveSettles(timerRun:)``).
    var settleAfterTimer = false
    /// The socket libcurl last watched for this transfer (its connection's), or
    /// `CCurl_SOCKET_BAD`.
    var watchedSocket = CCurl_SOCKET_BAD

    init(id: TransferID, request: TransferRequest, consumer: TransferConsumer, tag: Int) {
        self.id = id
        self.request = request
        self.state = .queued
        self.consumer = consumer
        self.tag = tag
        errorBuffer.initialize(to: 0)
    }

    deinit {
        precondition(easy == nil, "transfer released while its easy handle is alive")
        errorBuffer.deallocate()
    }

    /// Whether the transfer holds a connection slot (its easy handle is on the multi).
    var isActive: Bool {
        switch state {
        case .queued: false
        case .running, .settling, .draining, .aborting: true
        }
    }

    /// Back to waiting for a slot, as if never started (it has reported nothing yet).
    func requeue() {
        state = .queued
        leaseDenied = false
        reuseReported = false
        fds.removeAll()
        headSent = false
        bytesReceived = 0
        contentLength = nil
        contentCoding = nil
    }

    /// Gives up the easy handle (after it left the multi handle); the caller frees or reuses it.
    func detachEasy() -> UnsafeMutableRawPointer? {
        defer { easy = nil }
        return easy
    }

    /// Reports `event` to the consumer and applies its answer. Returns whether the transfer
    /// goes on (false: it is being cut).
    func report(_ event: TransferEvent) -> TransferDirective {
        guard reporting else { return .cancel }
        let directive = consumer.transfer(tag, event)
        switch directive {
        case .proceed, .pause:
            break
        case .finish:
            reporting = false
            drainOrCut()
        case .settle:
            beginSettle()
        case .cancel:
            cut()
        }
        return directive
    }

    /// The consumer is done with a transfer it may not read to the end: it reports nothing
    /// more, and the multi takes it off once libcurl's call has returned.
    func cut() {
        reporting = false
        abort()
    }

    /// Marks a running or settling transfer to be cut (see ``cut()``), leaving `reporting` alone.
    /// An HTTP/2 one cut inside libcurl's call is taken off once the call returns (``cutReturn(_:)``).
    func abort() {
        switch state {
        case .running, .settling:
            state = .aborting
            multi.counters.cut.increment()
            if multiplexed { multi.cutInCall.append(self) }
        case .queued, .draining, .aborting:
            return
        }
    }

    /// What the write callback returns for bytes of a transfer being cut. A short count ends an
    /// HTTP/1.1 transfer (CURLE_WRITE_ERROR; its connection closes). An HTTP/2 stream takes them
    /// and is removed once libcurl's call returns: libcurl 7.88 resets that stream alone either
    /// way, but after a short count it may leave the connection's unprocessed input behind, and
    /// the next transfer then finds the idle connection "dead" (lib/http2.c http2_connisdead
    /// overwrites the input buffer); taking the bytes lets libcurl process that input first.
    func cutReturn(_ data: UnsafeRawBufferPointer) -> Int {
        multiplexed ? data.count : 0
    }

    // MARK: - libcurl callbacks (inside curl_multi_socket_action or curl_easy_pause)

    func received(_ data: UnsafeRawBufferPointer) -> Int {
        if let answer = answerUnlessRunning(data) { return answer }
        if redirect.isHop { return swallowHopBody(data.count) }
        if !headSent {
            sendHead()
            // The consumer may have finished or cancelled on the head.
            if let answer = answerUnlessRunning(data) { return answer }
        }
        bytesReceived += Int64(data.count)
        switch report(.body(data)) {
        case .proceed:
            return data.count
        case .pause:
            bytesReceived -= Int64(data.count)
            pausedInCurl = true
            return Int(CCurl_WRITEFUNC_PAUSE)
        case .finish:
            return state == .draining ? data.count : cutReturn(data)
        case .settle:
            return data.count
        case .cancel:
            return cutReturn(data)
        }
    }

    /// What the write callback answers for body bytes when the consumer no longer hears them:
    /// a drained remainder is taken, bytes past a settle are the body going on, a cut
    /// transfer's bytes end it (``cutReturn(_:)``). Nil while the transfer runs.
    private func answerUnlessRunning(_ data: UnsafeRawBufferPointer) -> Int? {
        switch state {
        case .running:
            return nil
        case .draining:
            bytesReceived += Int64(data.count)
            return data.count
        case .settling:
            bytesReceived += Int64(data.count)
            return overranSettle(data.count)
        case .aborting, .queued:
            return cutReturn(data)
        }
    }

    func receivedHeader(_ line: UnsafeRawBufferPointer) -> Int {
        guard case .running = state else {
            // Trailers of a chunked body being drained or settled.
            if case .draining = state { return line.count }
            if case .settling = state { return line.count }
            return 0
        }
        if !reuseReported {
            // The connection is made: a lease taken for a new one returns if libcurl reused one.
            reuseReported = true
            if info(CURLINFO_NUM_CONNECTS) == 0 { multi.reservationUnused(self) }
        }
        if HeaderLine.starts(line, with: "HTTP/") {
            redirect.location = nil
            contentCoding = nil
        } else if line.count > 2 {
            switch HeaderLine.lowercased(line[0]) {
            case UInt8(ascii: "l"): noteLocation(line)
            case UInt8(ascii: "c"): noteContentEncoding(line)
            default: break
            }
        } else if line.count <= 2, line.first == UInt8(ascii: "\r") || line.first == UInt8(ascii: "\n") {
            // End of one response's headers.
            let status = info(CURLINFO_RESPONSE_CODE)
            if status < 200 || redirectHop(status: status) {
                // An interim response, or a redirect we follow: the head is still to come.
                multi.protocolShown(by: self)
            } else if !headSent {
                sendHead()
                if case .aborting = state { return 0 }
            }
        }
        return line.count
    }

    func sendHead() {
        guard let easy else { return }
        headSent = true
        multi.headArrived(self)
        var type: UnsafeMutablePointer<CChar>?
        _ = CCurl_easy_getinfo_string(easy, CURLINFO_CONTENT_TYPE, &type)
        var length: curl_off_t = -1
        _ = CCurl_easy_getinfo_off_t(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
        contentLength = length >= 0 ? Int64(length) : nil
        _ = report(.head(TransferHead(status: info(CURLINFO_RESPONSE_CODE),
                                      contentType: type.map { String(cString: $0) },
                                      contentLength: contentLength, contentEncoding: contentEncoding)))
    }

    func info(_ what: CURLINFO) -> Int {
        guard let easy else { return 0 }
        var value = 0
        _ = CCurl_easy_getinfo_long(easy, what, &value)
        return value
    }

    var errorDetail: String { String(cString: errorBuffer) }
}

let writeCallback: curl_write_callback = { ptr, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.received(UnsafeRawBufferPointer(start: ptr, count: size * count))
}

let headerCallback: curl_write_callback = { ptr, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.receivedHeader(UnsafeRawBufferPointer(start: ptr, count: size * count))
}
