/// The slowloris deadline: a new connection must complete its first request within `timeout`,
/// or the server closes it.
///
/// evhttp's own timeout restarts with every byte, so a client trickling its headers would never
/// hit it; this deadline is for the whole first request. A value that takes the time as an
/// argument: the server tells it of connections accepted and first requests, and asks it, from
/// one timer, which connections to close (tests drive it with instants of their own).
///
/// A connection whose deadline has passed is closed one check later, not at once: a loop that
/// was busy may have the request's bytes waiting to be read in the very turn the deadline is
/// noticed, so the server checks again on the next turn, after they are.
struct FirstRequestDeadlines<Connection: Hashable> {
    typealias Instant = ContinuousClock.Instant

    /// When the server should next call ``expire(now:)``.
    enum Wake: Equatable {
        /// On the next loop turn: connections are overdue.
        case nextTurn
        case at(Instant)
    }

    let timeout: Duration
    /// The connections awaiting their first request, with the serial number of their accept (a
    /// connection's key can come back, for a later connection, once it is freed).
    private var awaiting: [Connection: UInt64] = [:]
    /// Deadlines in order: with one timeout and a clock that never goes back, accept order is
    /// deadline order. Entries whose serial no longer matches `awaiting` are stale; the first
    /// entry never is.
    private var queue: [(connection: Connection, serial: UInt64, deadline: Instant)] = []
    private var queueStart = 0
    /// Connections found past their deadline by the last check, to close at this one.
    private var overdue: [(connection: Connection, serial: UInt64)] = []
    private var nextSerial: UInt64 = 0

    init(timeout: Duration) {
        self.timeout = timeout
    }

    /// The connections awaiting their first request.
    var connections: Dictionary<Connection, UInt64>.Keys { awaiting.keys }

    /// Whether `connection` is under its deadline.
    func isAwaiting(_ connection: Connection) -> Bool { awaiting[connection] != nil }

    /// A connection was accepted at `now` (never earlier than a previous call's `now`).
    mutating func accepted(_ connection: Connection, now: Instant) {
        nextSerial += 1
        awaiting[connection] = nextSerial
        queue.append((connection, nextSerial, now + timeout))
    }

    /// `connection` completed a request. Returns whether it was awaiting its first one (and is
    /// now free of the deadline).
    mutating func firstRequest(_ connection: Connection) -> Bool {
        guard awaiting.removeValue(forKey: connection) != nil else { return false }
        dropStaleHead()
        return true
    }

    /// `connection` has closed. Returns whether it was under its deadline (and is no longer).
    mutating func closed(_ connection: Connection) -> Bool {
        firstRequest(connection)
    }

    /// The connections to close at `now`: those already overdue at the previous check and still
    /// awaiting their first request. Those whose deadline passed since are closed at the next.
    mutating func expire(now: Instant) -> [Connection] {
        var close: [Connection] = []
        for entry in overdue where awaiting[entry.connection] == entry.serial {
            awaiting[entry.connection] = nil
            close.append(entry.connection)
        }
        overdue.removeAll(keepingCapacity: true)
        while queueStart < queue.count, queue[queueStart].deadline <= now {
            let entry = queue[queueStart]
            if awaiting[entry.connection] == entry.serial { overdue.append((entry.connection, entry.serial)) }
            queueStart += 1
        }
        dropStaleHead()
        return close
    }

    /// When to check next, or nil when no connection awaits a first request.
    var nextWake: Wake? {
        if !overdue.isEmpty { return .nextTurn }
        return queueStart < queue.count ? .at(queue[queueStart].deadline) : nil
    }

    private mutating func dropStaleHead() {
        while queueStart < queue.count, awaiting[queue[queueStart].connection] != queue[queueStart].serial {
            queueStart += 1
        }
        // Compact once the consumed part dominates, so the queue holds only what may be live.
        if queueStart > 64, queueStart * 2 > queue.count {
            queue.removeFirst(queueStart)
            queueStart = 0
        }
    }
}
