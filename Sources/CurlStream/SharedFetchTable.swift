/// A worker's shared fetches, with no I/O: which fetch a new reader of a URL joins, and how long
/// a completed fetch keeps serving readers that start after it (the micro-cache).
///
/// A reader needing `prefix` bytes of a URL joins a fetch of that URL that is still running and
/// holds at least that prefix; failing that, within its `cacheFor`, one that completed (without
/// an error, see ``SharedFetch/isCacheable``) that long ago at most; failing that, it starts a
/// fetch of its own with its prefix. A fetch is forgotten once it has no readers and can serve
/// no one new: it failed, it was cancelled (its last reader left), or it completed more than
/// its starter's `cacheFor` ago.
package struct SharedFetchTable {
    package typealias Instant = ContinuousClock.Instant

    package struct Entry {
        package let url: String
        package var fetch: SharedFetch
        /// How long the completed fetch is kept for new readers: the longest `cacheFor` of
        /// its readers (each is served within its own).
        package var keepFor: Duration
        /// When it started: a running fetch is joined for `joinableFor` after it.
        package let startedAt: Instant
        /// When its outcome became known.
        package var completedAt: Instant?
    }

    package private(set) var entries: [Int: Entry] = [:]
    /// Keys of the entries for each URL, oldest first.
    private var byURL: [String: [Int]] = [:]
    private var nextKey = 1

    package init() {}

    /// Reader `reader` needs `prefix` bytes of `url`: the fetch it reads, and how it got it.
    /// - Parameter joinableFor: how long after its start a running fetch takes joiners (they
    ///   share its deadlines, which count from its start).
    package mutating func start(url: String, prefix: Int, cacheFor: Duration, joinableFor: Duration = .seconds(15),
                                reader: UInt64, at now: Instant) -> (key: Int, how: SharedFetchStart)
    {
        for key in byURL[url] ?? [] {
            guard let how = serves(key, prefix: prefix, cacheFor: cacheFor, joinableFor: joinableFor, at: now) else { continue }
            // No copy of the entry is alive here: joining must not copy the readers' books.
            entries[key]!.fetch.join(reader, prefix: prefix)
            entries[key]!.keepFor = max(entries[key]!.keepFor, cacheFor)
            return (key, how)
        }
        let key = nextKey
        nextKey += 1
        var fetch = SharedFetch(prefix: prefix)
        fetch.join(reader, prefix: prefix)
        entries[key] = Entry(url: url, fetch: fetch, keepFor: cacheFor, startedAt: now)
        byURL[url, default: []].append(key)
        return (key, .started)
    }

    /// How fetch `key` would serve a reader needing `prefix` bytes with `cacheFor`, if at all.
    private func serves(_ key: Int, prefix: Int, cacheFor: Duration, joinableFor: Duration, at now: Instant) -> SharedFetchStart? {
        guard let entry = entries[key], entry.fetch.canServe(prefix: prefix) else { return nil }
        if entry.fetch.outcome == nil {
            return entry.startedAt.duration(to: now) <= joinableFor ? .joined : nil
        }
        guard entry.fetch.isCacheable, let at = entry.completedAt, cacheFor > .zero, at.duration(to: now) <= cacheFor else { return nil }
        return .cached
    }

    package func fetch(_ key: Int) -> SharedFetch? {
        entries[key]?.fetch
    }

    /// Changes fetch `key` (an event of its transfer, or of a reader), noting when its outcome
    /// became known.
    package mutating func update<R>(_ key: Int, at now: Instant, _ change: (inout SharedFetch) -> R) -> R? {
        guard entries[key] != nil else { return nil }
        let result = change(&entries[key]!.fetch)
        if entries[key]!.completedAt == nil, entries[key]!.fetch.outcome != nil { entries[key]!.completedAt = now }
        return result
    }

    /// Reader `reader` of fetch `key` leaves before its verdict. Returns true when the fetch is
    /// now read by no one while it runs: it is forgotten, and its owner cancels its transfer.
    package mutating func leave(_ reader: UInt64, of key: Int) -> Bool {
        guard entries[key]?.fetch.leave(reader) == true else { return false }
        forget(key)
        return true
    }

    /// Forgets fetch `key` now (its transfer is gone without an outcome; its readers were told).
    package mutating func forget(_ key: Int) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        byURL[entry.url]?.removeAll { $0 == key }
        if byURL[entry.url]?.isEmpty == true { byURL[entry.url] = nil }
    }

    /// Forgets every fetch that has no readers and can serve no one new at `now`: its window
    /// has passed, or a fetch of the same URL holding at least its prefix completed after it
    /// (so requests for ever longer prefixes keep one cached fetch per URL, not one each).
    /// Returns their keys (their owner frees what it holds for them).
    package mutating func retire(at now: Instant) -> [Int] {
        var gone: [Int] = []
        for (key, entry) in entries where entry.fetch.readers.isEmpty && entry.fetch.outcome != nil {
            if let until = servesUntil(entry), until > now, !isSuperseded(key, entry) { continue }
            gone.append(key)
        }
        for key in gone { forget(key) }
        return gone
    }

    private func isSuperseded(_ key: Int, _ entry: Entry) -> Bool {
        guard let at = entry.completedAt else { return false }
        return (byURL[entry.url] ?? []).contains { other in
            guard other != key, let o = entries[other], o.fetch.isCacheable, let oAt = o.completedAt else { return false }
            return o.fetch.prefix >= entry.fetch.prefix && oAt >= at && o.keepFor >= entry.keepFor
        }
    }

    /// When the next completed fetch stops serving new readers (then ``retire(at:)`` frees it).
    package var nextExpiry: Instant? {
        entries.values.compactMap { $0.fetch.readers.isEmpty ? servesUntil($0) : nil }.min()
    }

    private func servesUntil(_ entry: Entry) -> Instant? {
        guard entry.fetch.isCacheable, entry.keepFor > .zero, let at = entry.completedAt else { return nil }
        return at + entry.keepFor
    }
}
