import Glibc

/// The fuzz targets by name; `FUZZ_TARGET` picks one per run. Adding a target: a file here with
/// `enum XFuzz { static func run(_ data: UnsafeRawBufferPointer) }` that traps on a broken
/// invariant, one line below, and seeds under `Tests/Fuzz/<name>/corpus/` (see Fuzz/README.md).
let fuzzTargets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "config": ConfigFuzz.run,
    "utf8-json-text": UTF8JSONTextFuzz.run,
    "sse-response-parser": SSEResponseParserFuzz.run,
    "request-target": RequestTargetFuzz.run,
    "request-head-scanner": RequestHeadScannerFuzz.run,
    "fanout-session": FanOutSessionFuzz.run,
]

/// The target named by `FUZZ_TARGET`, looked up once.
let selectedTarget: @Sendable (UnsafeRawBufferPointer) -> Void = {
    let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = fuzzTargets[name] else {
        let known = fuzzTargets.keys.sorted().joined(separator: ", ")
        printError("stream-proxy-fuzz: set FUZZ_TARGET to one of: \(known)")
        exit(2)
    }
    return target
}()

/// libFuzzer's entry point: one input, any bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
