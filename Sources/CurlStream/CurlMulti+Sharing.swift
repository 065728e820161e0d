/// Coalescing: transfers of one URL that take the same bytes share one fetch.
extension CurlMulti {
    /// Starts a transfer of `request` that shares its fetch with the other shared transfers of
    /// the same URL on this multi: it joins one still running that takes at least
    /// `sharing.prefix` bytes, or reads one that completed within `sharing.cacheFor`, or
    /// starts one taking its own prefix. It reports to `consumer` as a transfer of its own
    /// does (from the first byte, at the consumer's pace), never before this returns;
    /// ``resume(_:)`` and ``cancel(_:)`` take its id. The fetch stops when its last reader
    /// cancels; a reader that pauses never holds it back (the fetch holds its prefix, once).
    ///
    /// Only for upstreams whose body is the same for every client: readers share its bytes.
    public func start(_ request: TransferRequest, sharing: TransferSharing, consumer: TransferConsumer, tag: Int) -> TransferID {
        enter()
        let id = newID()
        let shared = self.shared ?? SharedFetches(multi: self)
        self.shared = shared
        shared.start(request, sharing: sharing, consumer: consumer, tag: tag, id: id)
        return id
    }
}
