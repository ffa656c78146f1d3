// The message types the test modules understand (Message::type), shared by the modules in this
// directory, the C++ tests and the Tcl tests (tests/shell/helpers.tcl reads the constants below,
// so keep each on one line as `inline constexpr std::uint32_t kName = NUMBER;`).
#pragma once

#include <cstdint>

namespace nonstop::test::messages {

/// counter: record the message (every type is recorded after its action below).
inline constexpr std::uint32_t kRecord = 1;
/// counter: block on the probe gate named by the payload, then record.
inline constexpr std::uint32_t kBlockOnGate = 2;
/// counter: send a kRecord message to the module named by the payload; NAME.sent = "1"/"0".
inline constexpr std::uint32_t kForward = 3;
/// counter: ask the process-wide upgrader to "replace LIBRARY" or "unload" this very module;
/// the report's reason goes to NAME.self.
inline constexpr std::uint32_t kUpgradeSelf = 4;
/// counter: NAME.stack = the size of its thread's stack in bytes.
inline constexpr std::uint32_t kStackSize = 5;
/// counter: notify the payload's number of "tick" events, each a kTick message.
inline constexpr std::uint32_t kNotifyTicks = 10;
/// counter → subscribers of its "tick" event; payload: the event's sequence number.
inline constexpr std::uint32_t kTick = 11;
/// hanging: the handler throws std::runtime_error with the payload as its text.
inline constexpr std::uint32_t kThrow = 20;
/// hanging: the handler ends its thread with pthread_exit.
inline constexpr std::uint32_t kExitThread = 21;
/// hanging: the handler never returns (sleeps for ever).
inline constexpr std::uint32_t kHangForever = 22;
/// crashing: the handler writes through a null pointer (SIGSEGV).
inline constexpr std::uint32_t kCrash = 30;
/// crashing: the handler calls abort() (SIGABRT).
inline constexpr std::uint32_t kAbort = 31;

}  // namespace nonstop::test::messages
