import CCurl
import EventLoop
import Glibc

/// One upstream fetch on a ``CurlMulti``: its easy handle, its state, its consumer.
///
/// Owned by the multi's transfer table from ``CurlMulti/start(_:onEvent:)`` until it is
/// removed; libcurl's callbacks reach it through an unretained pointer that is valid for
/// exactly that long (the easy handle leaves the multi before the table lets go).
final class Transfer {
    enum State {
        /// Waiting for a connection slot.
        case queued(deadline: ContinuousClock.Instant)
        /// On the multi handle, reporting to the consumer.
        case running
        /// The consumer is done; a small known remainder is read and discarded for reuse.
        case draining
        /// The consumer is done or gone; the transfer is being cut and reports nothing.
        case aborting
        /// libcurl is done and the connection released, but body bytes the consumer paused on
        /// are still held here; the end is reported once they are delivered.
        case delivering(end: TransferEvent)
    }

    /// The most body bytes handed to the consumer in one event. libcurl can hand over far more
    /// at once (everything it buffered while paused); slicing lets the consumer pause between
    /// slices, so what it queues for a slow client stays bounded.
    static let sliceSize = 16 * 1024

    let id: TransferID
    let request: TransferRequest
    /// The local id of `request.hostKey` (see ``Admission``).
    var host = 0
    /// Admitted with a new lease that no socket has taken yet (see ``ConnectionLedger``).
    var reservedLease = false
    /// The socket libcurl opened for this transfer, if it opened one.
    var openedSocket: curl_socket_t?
    /// libcurl wanted a new connection for this transfer and no lease was free (it had expected
    /// to reuse an idle one that turned out dead or taken): the transfer goes back to the queue.
    var leaseDenied = false
    /// Admit this transfer only with a lease of its own (it was denied one before).
    var needsNewConnection = false
    /// SO_RCVBUF for sockets this transfer opens; set by the multi.
    var receiveBuffer: Int32 = 64 * 1024
    /// Where socket opens are reported; set by the multi.
    unowned(unsafe) var ledger: ConnectionLedger!
    var state: State
    let onEvent: (TransferEvent) -> Void
    private(set) var easy: UnsafeMutableRawPointer?
    /// libcurl writes its detailed error text here (CURLOPT_ERRORBUFFER).
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    var headSent = false
    var contentLength: Int64?
    var bytesReceived: Int64 = 0
    /// Whether the response being read is a redirect that libcurl will follow.
    var inRedirect = false
    var sawLocation = false

    /// The consumer asked to pause; the next write callback returns CURL_WRITEFUNC_PAUSE.
    var pauseWanted = false
    /// libcurl holds the transfer paused (we returned CURL_WRITEFUNC_PAUSE).
    var pausedInCurl = false

    /// When a byte last arrived (or the transfer started or resumed): read-timeout bookkeeping.
    var lastActivity: ContinuousClock.Instant

    init(id: TransferID, request: TransferRequest, deadline: ContinuousClock.Instant,
         onEvent: @escaping (TransferEvent) -> Void) {
        self.id = id
        self.request = request
        self.state = .queued(deadline: deadline)
        self.onEvent = onEvent
        self.lastActivity = deadline
        errorBuffer.initialize(to: 0)
    }

    deinit {
        precondition(easy == nil, "transfer released while its easy handle is alive")
        errorBuffer.deallocate()
    }

    /// Whether the transfer holds a connection slot (its easy handle is on the multi).
    var isActive: Bool {
        switch state {
        case .queued, .delivering: false
        case .running, .draining, .aborting: true
        }
    }

    /// Body bytes taken from libcurl that the consumer has not had yet (it paused mid-delivery).
    private var held: [UInt8] = []
    private var heldStart = 0

    var hasHeldBytes: Bool { heldStart < held.count }

    /// Makes `h` (fresh, or reset by `curl_easy_reset`) this transfer's easy handle and sets
    /// every option. Handles are reset between transfers: besides options, a reset clears state
    /// libcurl 7.88 otherwise carries over, such as its dead-connection retry count.
    func attach(_ h: UnsafeMutableRawPointer, options: TransferOptions) -> Bool {
        easy = h
        let me = Unmanaged.passUnretained(self).toOpaque()
        errorBuffer[0] = 0
        var ok = Self.configure(h, options: options, ledger: ledger)
        func check(_ rc: CURLcode) { if rc != CURLE_OK { ok = false } }
        check(CCurl_easy_setopt_string(h, CURLOPT_URL, request.url))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_PRIVATE, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_WRITEDATA, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_HEADERDATA, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_OPENSOCKETDATA, me))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer))
        return ok
    }

    /// The options every transfer of a multi shares.
    private static func configure(_ h: UnsafeMutableRawPointer, options: TransferOptions, ledger: ConnectionLedger) -> Bool {
        var ok = true
        func check(_ rc: CURLcode) { if rc != CURLE_OK { ok = false } }
        // libcurl frees the receive buffer when a transfer is done and allocates it at this size
        // for the next; it refuses the option while a buffer exists. A reset handle that refused
        // would believe in a 16 KiB buffer of another size: attach fails and the handle is dropped.
        check(CCurl_easy_setopt_long(h, CURLOPT_BUFFERSIZE, options.receiveBufferSize))
        check(CCurl_easy_setopt_write_callback(h, CURLOPT_WRITEFUNCTION, writeCallback))
        check(CCurl_easy_setopt_write_callback(h, CURLOPT_HEADERFUNCTION, headerCallback))
        // Every connection is matched with a lease of the process-wide budget. The close
        // callback outlives any transfer (libcurl closes cached connections later), so it
        // reports to the ledger, which outlives the multi handle.
        check(CCurl_easy_setopt_opensocket_callback(h, CURLOPT_OPENSOCKETFUNCTION, openSocketCallback))
        check(CCurl_easy_setopt_closesocket_callback(h, CURLOPT_CLOSESOCKETFUNCTION, closeSocketCallback))
        check(CCurl_easy_setopt_pointer(h, CURLOPT_CLOSESOCKETDATA, Unmanaged.passUnretained(ledger).toOpaque()))
        check(CCurl_easy_setopt_long(h, CURLOPT_NOSIGNAL, 1))
        check(CCurl_easy_setopt_long(h, CURLOPT_FOLLOWLOCATION, 1))
        check(CCurl_easy_setopt_long(h, CURLOPT_MAXREDIRS, options.maxRedirects))
        check(CCurl_easy_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        check(CCurl_easy_setopt_string(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
        // HTTP/1.1 keeps "connections" meaning connections for the pool limits.
        check(CCurl_easy_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)))
        check(CCurl_easy_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(options.connectTimeout)))
        check(CCurl_easy_setopt_long(h, CURLOPT_TIMEOUT_MS, milliseconds(options.totalTimeout)))
        check(CCurl_easy_setopt_long(h, CURLOPT_MAXAGE_CONN, max(1, Int(options.keepaliveExpiry.rounded(.up)))))
        check(CCurl_easy_setopt_long(h, CURLOPT_TCP_NODELAY, 1))
        check(CCurl_easy_setopt_string(h, CURLOPT_USERAGENT, options.userAgent))
        if let ca = options.caFile { check(CCurl_easy_setopt_string(h, CURLOPT_CAINFO, ca)) }
        return ok
    }

    /// Back to waiting for a slot, as if never started (it has reported nothing yet).
    func requeue(deadline: ContinuousClock.Instant) {
        state = .queued(deadline: deadline)
        leaseDenied = false
        needsNewConnection = true
        reservedLease = false
        openedSocket = nil
        headSent = false
        bytesReceived = 0
        contentLength = nil
    }

    /// Gives up the easy handle (after it left the multi handle); the caller frees or reuses it.
    func detachEasy() -> UnsafeMutableRawPointer? {
        defer { easy = nil }
        return easy
    }

    // MARK: - libcurl callbacks (inside curl_multi_socket_action or curl_easy_pause)

    func received(_ data: UnsafeRawBufferPointer) -> Int {
        switch state {
        case .draining:
            bytesReceived += Int64(data.count)
            return data.count
        case .aborting, .queued, .delivering:
            return 0
        case .running:
            break
        }
        if pauseWanted {
            pausedInCurl = true
            return Int(CCurl_WRITEFUNC_PAUSE)
        }
        lastActivity = .now
        bytesReceived += Int64(data.count)
        if !headSent { sendHead() }
        if hasHeldBytes {
            // Order first: these follow bytes still held (not expected: resume empties the hold
            // before libcurl is unpaused).
            held.append(contentsOf: data)
            return data.count
        }
        var offset = 0
        while offset < data.count {
            let n = min(Self.sliceSize, data.count - offset)
            onEvent(.body(UnsafeRawBufferPointer(rebasing: data[offset..<offset + n])))
            offset += n
            // The consumer may have cancelled, finished or paused during the call.
            switch state {
            case .aborting: return 0
            case .draining, .queued, .delivering: return data.count
            case .running: break
            }
            if pauseWanted && offset < data.count {
                held.append(contentsOf: data[offset...])
                return data.count
            }
        }
        return data.count
    }

    /// Hands held bytes to the consumer, a slice at a time, until none are left or it pauses,
    /// finishes or cancels. Never inside a libcurl call.
    func deliverHeld() {
        while hasHeldBytes && !pauseWanted {
            switch state {
            case .running, .delivering: break
            case .draining, .aborting, .queued:
                dropHeld()
                return
            }
            let n = min(Self.sliceSize, held.count - heldStart)
            let start = heldStart
            heldStart += n
            held.withUnsafeBytes { onEvent(.body(UnsafeRawBufferPointer(rebasing: $0[start..<start + n]))) }
        }
        if !hasHeldBytes { dropHeld() }
    }

    func dropHeld() {
        held = []
        heldStart = 0
    }

    func receivedHeader(_ line: UnsafeRawBufferPointer) -> Int {
        guard case .running = state else {
            if case .draining = state { return line.count }
            return 0
        }
        lastActivity = .now
        if reservedLease, info(CURLINFO_NUM_CONNECTS) == 0 {
            // Admitted with a new lease, but libcurl reused an idle connection: give it back.
            reservedLease = false
            ledger.unreserve(host)
        }
        if line.starts(with: "HTTP/".utf8) {
            sawLocation = false
            inRedirect = false
        } else if line.count >= 9, asciiLowercasedPrefix(line, 9) == "location:" {
            sawLocation = true
        } else if line.count <= 2, line.first == UInt8(ascii: "\r") || line.first == UInt8(ascii: "\n") {
            // End of one response's headers.
            let status = info(CURLINFO_RESPONSE_CODE)
            if status < 200 || (sawLocation && (300..<400).contains(status)) {
                inRedirect = status >= 300
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
        var type: UnsafeMutablePointer<CChar>?
        _ = CCurl_easy_getinfo_string(easy, CURLINFO_CONTENT_TYPE, &type)
        var length: curl_off_t = -1
        _ = CCurl_easy_getinfo_off_t(easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
        contentLength = length >= 0 ? Int64(length) : nil
        onEvent(.head(TransferHead(status: info(CURLINFO_RESPONSE_CODE),
                                   contentType: type.map { String(cString: $0) },
                                   contentLength: contentLength)))
    }

    func info(_ what: CURLINFO) -> Int {
        guard let easy else { return 0 }
        var value = 0
        _ = CCurl_easy_getinfo_long(easy, what, &value)
        return value
    }

    var errorDetail: String { String(cString: errorBuffer) }

    /// libcurl wants a socket for a new connection of this transfer.
    func openSocket(_ address: UnsafeMutablePointer<curl_sockaddr>) -> curl_socket_t {
        let fd = socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
        guard fd >= 0 else { return CCurl_SOCKET_BAD }
        var size = receiveBuffer
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        guard ledger.opened(fd, host: host, reserved: reservedLease) else {
            close(fd)
            leaseDenied = true
            return CCurl_SOCKET_BAD
        }
        reservedLease = false
        openedSocket = fd
        return fd
    }
}

private let openSocketCallback: curl_opensocket_callback = { clientp, _, address in
    guard let clientp, let address else { return CCurl_SOCKET_BAD }
    return Unmanaged<Transfer>.fromOpaque(clientp).takeUnretainedValue().openSocket(address)
}

private let closeSocketCallback: curl_closesocket_callback = { clientp, fd in
    close(fd)
    if let clientp { Unmanaged<ConnectionLedger>.fromOpaque(clientp).takeUnretainedValue().closed(fd) }
    return 0
}

private func milliseconds(_ seconds: Double) -> Int { max(1, Int((seconds * 1000).rounded())) }

private func asciiLowercasedPrefix(_ bytes: UnsafeRawBufferPointer, _ n: Int) -> String {
    String(decoding: bytes.prefix(n).map { $0 | ($0 >= 65 && $0 <= 90 ? 0x20 : 0) }, as: UTF8.self)
}

private let writeCallback: curl_write_callback = { ptr, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.received(UnsafeRawBufferPointer(start: ptr, count: size * count))
}

private let headerCallback: curl_write_callback = { ptr, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.receivedHeader(UnsafeRawBufferPointer(start: ptr, count: size * count))
}
