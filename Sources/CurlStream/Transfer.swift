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
        /// Waiting for a connection slot (the deadline is the pool's).
        case queued
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
    let onEvent: (TransferEvent) -> Void
    /// Set by `attach`, taken back by `detachEasy`.
    var easy: UnsafeMutableRawPointer?
    /// libcurl writes its detailed error text here (CURLOPT_ERRORBUFFER).
    let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))

    var headSent = false
    var contentLength: Int64?
    var bytesReceived: Int64 = 0
    var sawLocation = false

    /// The consumer asked to pause; the next write callback returns CURL_WRITEFUNC_PAUSE.
    var pauseWanted = false
    /// libcurl holds the transfer paused (we returned CURL_WRITEFUNC_PAUSE).
    var pausedInCurl = false

    /// When a byte last arrived (or the transfer started or resumed): read-timeout bookkeeping.
    var lastActivity: ContinuousClock.Instant

    init(id: TransferID, request: TransferRequest, onEvent: @escaping (TransferEvent) -> Void) {
        self.id = id
        self.request = request
        self.state = .queued
        self.onEvent = onEvent
        self.lastActivity = .now
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

    /// Back to waiting for a slot, as if never started (it has reported nothing yet).
    func requeue() {
        state = .queued
        leaseDenied = false
        reuseReported = false
        fds.removeAll()
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
        if !reuseReported {
            // The connection is made: a lease taken for a new one returns if libcurl reused one.
            reuseReported = true
            if info(CURLINFO_NUM_CONNECTS) == 0 { multi.reservationUnused(self) }
        }
        if line.starts(with: "HTTP/".utf8) {
            sawLocation = false
        } else if line.count >= 9, asciiLowercasedPrefix(line, 9) == "location:" {
            sawLocation = true
        } else if line.count <= 2, line.first == UInt8(ascii: "\r") || line.first == UInt8(ascii: "\n") {
            // End of one response's headers.
            let status = info(CURLINFO_RESPONSE_CODE)
            if status < 200 || (sawLocation && (300..<400).contains(status)) {
                // An interim response, or a redirect libcurl follows: the head is still to come.
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
        guard multi.socketOpened(fd, by: self) else {
            close(fd)
            leaseDenied = true
            return CCurl_SOCKET_BAD
        }
        fds.append(fd)
        return fd
    }
}

let openSocketCallback: curl_opensocket_callback = { clientp, _, address in
    guard let clientp, let address else { return CCurl_SOCKET_BAD }
    return Unmanaged<Transfer>.fromOpaque(clientp).takeUnretainedValue().openSocket(address)
}

let closeSocketCallback: curl_closesocket_callback = { clientp, fd in
    close(fd)
    if let clientp { Unmanaged<ConnectionLedger>.fromOpaque(clientp).takeUnretainedValue().closed(fd) }
    return 0
}

private func asciiLowercasedPrefix(_ bytes: UnsafeRawBufferPointer, _ n: Int) -> String {
    String(decoding: bytes.prefix(n).map { $0 | ($0 >= 65 && $0 <= 90 ? 0x20 : 0) }, as: UTF8.self)
}

let writeCallback: curl_write_callback = { ptr, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.received(UnsafeRawBufferPointer(start: ptr, count: size * count))
}

let headerCallback: curl_write_callback = { ptr, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.receivedHeader(UnsafeRawBufferPointer(start: ptr, count: size * count))
}
