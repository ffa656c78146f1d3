// The OSPF module of the non-stop router (thesis 5.1.2), built as versions 1-3 (ROUTER_VERSION):
// broadcasts HELLO packets on every "broadcast" event and prints the relay numbers IP and VRRP
// send it. Version 3 decodes both message protocols of figure 5.8 (transaction 6); versions 1
// and 2 know only the plain one.
#include <nonstop/module.hpp>

#include <cstdio>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

#include "router_protocol.hpp"
#include "udp_sender.hpp"

#include "router_version.hpp"

namespace {

using namespace nonstop::router;

constexpr int kVersion = ROUTER_VERSION;

class Ospf : public nonstop::Module {
public:
    void initialize() override {
        monitor_.open(monitor_port(kOspfMonitorEnv, kDefaultOspfMonitorPort));
        quiet_ = quiet();
        context().subscribe("TIMER", "broadcast");
    }

    void handle(const nonstop::Message& m) override {
        if (m.type == kBroadcast && active_) hello();
        if (m.type == kRelay) relay(m);
    }

    void enable() override { active_ = true; }
    void disable() override { active_ = false; }

    // The last number seen from each source: lets every version report a gap in its own output.
    nonstop::State put_state() override {
        std::string bytes;
        for (const auto& [source, last] : last_seen_)
            bytes += source + " " + std::to_string(last) + "\n";
        return {kStateSchema, bytes};
    }

    void get_state(const nonstop::State& s) override {
        if (s.schema != kStateSchema)
            throw std::runtime_error("unknown OSPF state schema " + std::to_string(s.schema));
        std::istringstream in(s.bytes);
        std::string source;
        long long last = 0;
        while (in >> source >> last) last_seen_[source] = last;
    }

private:
    static constexpr std::uint32_t kStateSchema = 1;

    void hello() {
        monitor_.send(datagram("HELLO", {{"module", context().name()},
                                         {"version", std::to_string(kVersion)},
                                         {"time_ms", std::to_string(now_ms())}}));
    }

    void relay(const nonstop::Message& m) {
        std::istringstream in(m.payload);
        long long number = 0;
        std::string from_version;
        long long sent_ms = 0;
        bool decoded = false;
        if (m.protocol == kProtocolPlain) {
            decoded = static_cast<bool>(in >> number >> from_version);
        } else if (m.protocol == kProtocolTimestamped && kVersion >= 3) {
            decoded = static_cast<bool>(in >> number >> from_version >> sent_ms);
        }
        if (!decoded) {
            if (!quiet_)
                std::printf("OSPF V%d cannot decode protocol %u from %s: %s\n", kVersion,
                            static_cast<unsigned>(m.protocol), m.sender.c_str(), m.payload.c_str());
            std::fflush(stdout);
            return;
        }
        if (!quiet_) {
            std::string line = "OSPF V" + std::to_string(kVersion) +
                               " got msg : " + std::to_string(number) + " from " + m.sender + " V" +
                               from_version;
            if (m.protocol == kProtocolTimestamped) line += " at " + format_time(sent_ms);
            if (auto last = last_seen_.find(m.sender);
                last != last_seen_.end() && number != last->second + 1)
                line += "   (expected " + std::to_string(last->second + 1) + ")";
            std::puts(line.c_str());
            std::fflush(stdout);
        }
        last_seen_[m.sender] = number;
        // Forwarded even while passive: it is the checker's view of what OSPF served, not a
        // packet OSPF initiates, and the drain before a swap must be seen too.
        monitor_.send(datagram("RELAY", {{"module", context().name()},
                                         {"version", std::to_string(kVersion)},
                                         {"time_ms", std::to_string(now_ms())},
                                         {"from", m.sender},
                                         {"from_version", from_version},
                                         {"number", std::to_string(number)},
                                         {"protocol", std::to_string(m.protocol)}}));
    }

    UdpSender monitor_;
    bool active_ = false;
    bool quiet_ = false;
    std::map<std::string, long long> last_seen_;
};

}  // namespace

NONSTOP_MODULE(Ospf, "OSPF", ROUTER_STR(ROUTER_VERSION))
