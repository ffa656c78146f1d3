// What a monitor node (thesis figure 5.3) learns from the datagrams it receives: which versions
// served, how long the module was silent, and whether the relay numbers OSPF forwarded from IP
// and VRRP are consecutive. Shared by the monitor programs and the end-to-end test.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "router_protocol.hpp"

namespace nonstop::router {

class MonitorLog {
public:
    using Clock = std::chrono::steady_clock;

    /// The relay numbers seen from one source module.
    struct RelayTrack {
        long long first = 0;
        long long last = 0;
        std::uint64_t count = 0;
        std::uint64_t gaps = 0;     // times a number skipped ahead
        std::uint64_t missing = 0;  // numbers skipped in all
        std::uint64_t repeats = 0;  // times a number was not above the previous one
    };

    struct Snapshot {
        std::uint64_t received = 0;  // every datagram
        std::uint64_t packets = 0;   // ICMP, HELLO, HEARTBEAT
        std::uint64_t unparsed = 0;
        std::set<std::string> versions;  // of the module sending packets
        long long longest_silence_ms = 0;
        long long longest_outage_ms = 0;  // longest silence above the threshold; 0 if none
        std::uint64_t outages = 0;
        std::map<std::string, RelayTrack> relays;  // by source module
        /// "OSPF version:message protocol" pairs OSPF decoded and forwarded.
        std::set<std::string> decoded;
        /// The relay numbers a module said it consumed when it last terminated (BYE).
        std::map<std::string, long long> relay_sent;
        /// An END datagram arrived: whoever sent it has nothing more to say before it.
        bool ended = false;
    };

    /// What one datagram told, for a monitor's own output.
    struct Observation {
        Fields fields;
        long long outage_ms = 0;  // non-zero when this datagram ended an outage
        std::string anomaly;      // a relay gap or repeat, in one sentence
    };

    /// `outage_threshold`: silence between packets longer than this is an outage.
    explicit MonitorLog(std::chrono::milliseconds outage_threshold);

    /// Records one datagram that arrived at `arrival`.
    Observation record(std::string_view text, Clock::time_point arrival = Clock::now());
    Snapshot snapshot() const;
    /// Waits until `done` holds for the log (evaluated under its lock) or `timeout` passes.
    bool wait_until(const std::function<bool(const Snapshot&)>& done,
                    std::chrono::milliseconds timeout) const;
    /// One machine-readable line: "SUMMARY monitor=NAME received=.. gaps=0 ...".
    std::string summary(std::string_view monitor) const;

private:
    const std::chrono::milliseconds threshold_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    Snapshot state_;
    bool any_packet_ = false;
    Clock::time_point last_packet_{};
};

}  // namespace nonstop::router
