/// The charset of an upstream body, from its `Content-Type` (PRODUCT.md §5).
///
/// Names are canonical: a handful of common aliases map to one name (`latin1` to `ISO-8859-1`,
/// `sjis` to `SHIFT_JIS`, `cp1252` to `WINDOWS-1252`, ...); any other label is upper-cased as
/// sent. HTML `<meta charset>` is not sniffed.
package enum Charset {
    /// What `head` names when the body is read as UTF-8: no charset, UTF-8, US-ASCII (a subset),
    /// or a charset iconv does not know.
    package static let utf8 = "UTF-8"

    /// The canonical charset named by `contentType`'s `charset` parameter, or nil if there is none
    /// (or it is not a plausible charset name).
    package static func named(in contentType: String?) -> String? {
        // Most types carry no parameter at all: no charset, and nothing to split.
        guard let contentType, contentType.utf8.contains(UInt8(ascii: ";")) else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, pair[0].trimmed.lowercased() == "charset" else { continue }
            var label = pair[1].trimmed
            if label.count >= 2, label.first == "\"", label.last == "\"" { label = label.dropFirst().dropLast() }
            return canonical(String(label))
        }
        return nil
    }

    /// The canonical form of a charset label, nil if it cannot be a charset name.
    package static func canonical(_ label: String) -> String? {
        guard !label.isEmpty, label.utf8.count <= 40,
              label.utf8.allSatisfy({ isNameByte($0) }) else { return nil }
        let upper = label.uppercased()
        return aliases[upper] ?? upper
    }

    /// The charsets each worker opens at start (see ``TranscoderPool``): every alias target
    /// below and the other legacy encodings most used on the web, by their canonical names.
    package static let common = [
        "ISO-8859-1", "ISO-8859-2", "ISO-8859-15", "WINDOWS-1250", "WINDOWS-1251", "WINDOWS-1252",
        "KOI8-R", "SHIFT_JIS", "EUC-JP", "EUC-KR", "GBK", "GB18030", "BIG5",
    ]

    /// Whether a canonical name is read as UTF-8 without conversion.
    package static func isUTF8(_ name: String) -> Bool { name == utf8 || name == "US-ASCII" }

    private static let aliases: [String: String] = [
        "UTF8": "UTF-8", "UNICODE-1-1-UTF-8": "UTF-8",
        "ASCII": "US-ASCII", "ANSI_X3.4-1968": "US-ASCII", "US": "US-ASCII",
        "LATIN1": "ISO-8859-1", "ISO8859-1": "ISO-8859-1", "ISO_8859-1": "ISO-8859-1", "L1": "ISO-8859-1",
        "ISO-IR-100": "ISO-8859-1", "CP819": "ISO-8859-1", "IBM819": "ISO-8859-1",
        "CP1252": "WINDOWS-1252", "X-CP1252": "WINDOWS-1252",
        "SJIS": "SHIFT_JIS", "SHIFT-JIS": "SHIFT_JIS", "X-SJIS": "SHIFT_JIS", "MS_KANJI": "SHIFT_JIS",
        "CSSHIFTJIS": "SHIFT_JIS",
        "EUCJP": "EUC-JP", "EUC_JP": "EUC-JP", "X-EUC-JP": "EUC-JP",
        "GB2312": "GBK", "X-GBK": "GBK",
        "KOI8R": "KOI8-R",
    ]

    private static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
             UInt8(ascii: ":"), UInt8(ascii: "+"):
            true
        default:
            false
        }
    }
}

private extension Substring {
    var trimmed: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}
