// What the modules of the non-stop router (thesis chapter 5) and the programs watching them
// agree on: message types, the relay payloads of figure 5.8, the datagram format the monitors
// read, and every default (ports, period) in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <map>
#include <sstream>
#include <string>
#include <string_view>

namespace nonstop::router {

// Message types between modules (Message::type).
inline constexpr std::uint32_t kBroadcast = 1;  // TIMER → subscribers; payload: tick number
inline constexpr std::uint32_t kRelay = 2;      // IP/VRRP → OSPF; payload: see relay_payload
/// Operator control for IP: its next disable() (or, if already disabled, the handling of this
/// message) takes the payload's milliseconds, so a transaction cannot find it quiescent in
/// time. Cleared when IP is enabled again.
inline constexpr std::uint32_t kSlowDrain = 3;

// Message protocols (Message::protocol): versions 1 and 2 speak the first, version 3 the second.
inline constexpr std::uint16_t kProtocolPlain = 1;        // "NUMBER VERSION"
inline constexpr std::uint16_t kProtocolTimestamped = 2;  // "NUMBER VERSION TIME_MS"

// Host configuration, read by the modules in initialize().
inline constexpr const char* kPeriodEnv = "NONSTOP_ROUTER_PERIOD_MS";
inline constexpr const char* kIpMonitorEnv = "NONSTOP_ROUTER_IP_MONITOR";
inline constexpr const char* kOspfMonitorEnv = "NONSTOP_ROUTER_OSPF_MONITOR";
inline constexpr const char* kVrrpMonitorEnv = "NONSTOP_ROUTER_VRRP_MONITOR";
inline constexpr const char* kQuietEnv = "NONSTOP_ROUTER_QUIET";  // "1": OSPF prints nothing

inline constexpr std::chrono::milliseconds kDefaultPeriod{500};
inline constexpr std::uint16_t kDefaultIpMonitorPort = 47101;
inline constexpr std::uint16_t kDefaultOspfMonitorPort = 47102;
inline constexpr std::uint16_t kDefaultVrrpMonitorPort = 47103;
inline constexpr const char* kMonitorHost = "127.0.0.1";

inline long env_number(const char* name, long fallback) {
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    return (end != nullptr && *end == '\0' && value > 0) ? value : fallback;
}

inline std::uint16_t monitor_port(const char* env, std::uint16_t fallback) {
    const long port = env_number(env, fallback);
    return port > 0 && port < 65536 ? static_cast<std::uint16_t>(port) : fallback;
}

inline std::chrono::milliseconds period() {
    return std::chrono::milliseconds(env_number(kPeriodEnv, kDefaultPeriod.count()));
}

inline bool quiet() { return env_number(kQuietEnv, 0) == 1; }

/// Wall-clock milliseconds since the epoch: what datagrams and version-3 messages carry.
inline std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// "10:38:20.123 Tuesday Dec 19 2000", local time, as the thesis prints timestamps.
inline std::string format_time(std::int64_t ms) {
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm local{};
    localtime_r(&seconds, &local);
    char clock[16];
    char date[48];
    std::strftime(clock, sizeof clock, "%H:%M:%S", &local);
    std::strftime(date, sizeof date, "%A %b %d %Y", &local);
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03d", static_cast<int>(ms % 1000));
    return std::string(clock) + millis + " " + date;
}

/// A datagram is one line of space-separated key=value fields; its first field is its kind
/// (ICMP, HELLO, HEARTBEAT, RELAY, BYE), stored under "kind".
using Fields = std::map<std::string, std::string, std::less<>>;

inline std::string datagram(std::string_view kind, const Fields& fields) {
    std::string out(kind);
    for (const auto& [key, value] : fields) out += " " + key + "=" + value;
    return out;
}

inline Fields parse_datagram(std::string_view text) {
    Fields fields;
    std::istringstream in{std::string(text)};
    std::string word;
    if (in >> word) fields["kind"] = word;
    while (in >> word) {
        const auto eq = word.find('=');
        if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
    }
    return fields;
}

}  // namespace nonstop::router
