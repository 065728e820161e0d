import Glibc

/// Converts a byte stream in one charset to UTF-8 with glibc's iconv, piece by piece.
///
/// - A character split across pieces is held back (its bytes are the next piece's start), so
///   no output ever carries part of a character.
/// - An invalid sequence becomes U+FFFD and conversion goes on with the next byte; a character
///   left incomplete when the body ends becomes U+FFFD too.
///
/// It owns its iconv descriptor and closes it once, on deinit. A worker reuses descriptors
/// through a ``TranscoderPool``; ``reset()`` returns one to its initial state.
package final class Transcoder {
    /// The canonical charset converted from.
    package let charset: String
    private let cd: iconv_t
    /// Bytes of a character that has started but not finished.
    private var pending: [UInt8] = []
    /// A character this long that iconv still calls incomplete is treated as invalid.
    private static let maxPending = 16

    /// nil when iconv cannot convert from `charset`.
    package init?(charset: String) {
        guard let cd = iconv_open("UTF-8", charset), cd != iconv_t(bitPattern: -1) else { return nil }
        self.charset = charset
        self.cd = cd
    }

    deinit { iconv_close(cd) }

    /// Bytes held back for the next piece.
    package var heldBytes: Int { pending.count }

    /// Appends the UTF-8 conversion of `input` to `out`.
    ///
    /// - Parameter final: no more bytes follow: an incomplete character at the end is U+FFFD.
    /// - Returns: the number of input bytes (held ones included) now represented in `out`.
    package func append(_ input: UnsafeRawBufferPointer, final: Bool, into out: inout [UInt8]) -> Int {
        if pending.isEmpty { return convert(input, final: final, into: &out) }
        let joined = pending + Array(input)
        pending.removeAll(keepingCapacity: true)
        return joined.withUnsafeBytes { convert($0, final: final, into: &out) }
    }

    private func convert(_ input: UnsafeRawBufferPointer, final: Bool, into out: inout [UInt8]) -> Int {
        guard let base = input.baseAddress, !input.isEmpty else { return 0 }
        var source: UnsafeMutablePointer<CChar>? = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: CChar.self))
        var sourceLeft = input.count
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 4096) { buffer in
            while sourceLeft > 0 {
                var target: UnsafeMutablePointer<CChar>? = buffer.baseAddress
                var targetLeft = buffer.count
                let rc = iconv(cd, &source, &sourceLeft, &target, &targetLeft)
                let err = errno
                let produced = buffer.count - targetLeft
                buffer.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: produced) {
                    out.append(contentsOf: UnsafeBufferPointer(start: $0, count: produced))
                }
                guard rc == -1 else { break }
                switch err {
                case E2BIG:
                    continue
                case EINVAL where !final && sourceLeft < Self.maxPending:
                    // An incomplete character at the end: the next piece completes it.
                    pending.append(contentsOf: UnsafeRawBufferPointer(start: source!, count: sourceLeft))
                    sourceLeft = 0
                case EINVAL where final:
                    out.append(contentsOf: replacement)
                    sourceLeft = 0
                default:
                    // EILSEQ (or a character too long to be one): one byte is replaced.
                    out.append(contentsOf: replacement)
                    source = source! + 1
                    sourceLeft -= 1
                }
            }
        }
        return input.count - pending.count
    }

    /// Forgets a held incomplete character: the prefix ended inside it.
    package func dropHeld() { pending.removeAll(keepingCapacity: true) }

    /// Writes a held incomplete character as U+FFFD: the body ended inside it. Returns the
    /// number of bytes it stood for.
    package func flushHeld(into out: inout [UInt8]) -> Int {
        guard !pending.isEmpty else { return 0 }
        let n = pending.count
        pending.removeAll(keepingCapacity: true)
        out.append(contentsOf: replacement)
        return n
    }

    /// Back to the initial state, for the next body.
    package func reset() {
        pending.removeAll(keepingCapacity: true)
        _ = iconv(cd, nil, nil, nil, nil)
    }
}

/// One worker's iconv descriptors, kept per charset for the next body: opening one costs far
/// more than resetting it. Charsets iconv does not know are remembered too. Used on one loop only.
///
/// The first `iconv_open` of a charset in the process reads glibc's gconv cache and `dlopen`s
/// the charset's module under glibc's lock: file I/O a loop must not wait for while it serves.
/// So a worker's pool opens the common charsets when it is made, at worker start, and keeps at
/// least one descriptor of each (a module stays loaded while one of its descriptors is open;
/// more descriptors of a loaded charset, or of an alias of one, load nothing). A rarer charset's
/// first use in the process loads its module on the loop, once.
package final class TranscoderPool {
    private var idle: [String: [Transcoder]] = [:]
    private var unknown: Set<String> = []
    /// Idle descriptors kept per charset, and unknown names remembered.
    private let keep: Int
    private static let maxUnknown = 64
    /// Descriptors this pool has opened (`iconv_open` calls that succeeded).
    package private(set) var opened = 0

    /// - Parameter charsets: canonical names opened now, one descriptor each, ready for the
    ///   first body in each (names iconv does not know are remembered as unknown).
    package init(keep: Int = 16, opening charsets: [String] = []) {
        self.keep = max(1, keep)
        for charset in charsets {
            guard let t = open(charset) else { continue }
            idle[charset, default: []].append(t)
        }
    }

    /// A transcoder from `charset`, nil if iconv does not know it.
    package func transcoder(for charset: String) -> Transcoder? {
        if let t = idle[charset]?.popLast() { return t }
        guard !unknown.contains(charset) else { return nil }
        return open(charset)
    }

    private func open(_ charset: String) -> Transcoder? {
        guard let t = Transcoder(charset: charset) else {
            if unknown.count < Self.maxUnknown { unknown.insert(charset) }
            return nil
        }
        opened += 1
        return t
    }

    /// Takes back a transcoder whose body is over.
    package func recycle(_ t: Transcoder) {
        guard idle[t.charset, default: []].count < keep else { return }
        t.reset()
        idle[t.charset, default: []].append(t)
    }
}

private let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
