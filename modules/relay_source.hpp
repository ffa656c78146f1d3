// What IP and VRRP share (thesis 5.1.2): on every "broadcast" event from TIMER, send one packet
// to the monitor and the next relay number to OSPF. The relay number is the module's state, so
// it continues across every replacement; it is consumed only when OSPF's proxy accepted it.
#pragma once

#include <nonstop/module.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "router_protocol.hpp"
#include "udp_sender.hpp"

namespace nonstop::router {

class RelaySource : public nonstop::Module {
public:
    /// `packet`: the datagram kind this module broadcasts; `version`: of this implementation.
    RelaySource(const char* packet, const char* monitor_env, std::uint16_t monitor_default,
                int version)
        : packet_(packet),
          monitor_env_(monitor_env),
          monitor_default_(monitor_default),
          version_(version) {}

    void initialize() override {
        monitor_.open(monitor_port(monitor_env_, monitor_default_));
        context().subscribe("TIMER", "broadcast");
    }

    void handle(const nonstop::Message& m) override {
        if (m.type == kBroadcast) broadcast();
    }

    void enable() override { active_ = true; }
    void disable() override { active_ = false; }

    nonstop::State put_state() override { return {kStateSchema, std::to_string(next_relay_)}; }

    void get_state(const nonstop::State& s) override {
        if (s.schema != kStateSchema)
            throw std::runtime_error("unknown relay state schema " + std::to_string(s.schema));
        next_relay_ = std::stoll(s.bytes);
    }

    /// Tells the monitor how many relay numbers this implementation's lineage consumed, so a
    /// checker can tell "nothing lost" from "nothing sent".
    void terminate() override {
        monitor_.send(datagram("BYE", {{"module", context().name()},
                                       {"version", std::to_string(version_)},
                                       {"time_ms", std::to_string(now_ms())},
                                       {"relay_sent", std::to_string(next_relay_ - 1)}}));
    }

protected:
    bool active() const { return active_; }

private:
    static constexpr std::uint32_t kStateSchema = 1;  // the decimal next relay number

    void broadcast() {
        // A passive module initiates nothing, not even a packet: that is the outage the
        // monitors see during a swap.
        if (!active_) return;
        const auto now = now_ms();
        monitor_.send(datagram(packet_, {{"module", context().name()},
                                         {"version", std::to_string(version_)},
                                         {"time_ms", std::to_string(now)}}));
        nonstop::Message relay;
        relay.type = kRelay;
        std::string payload = std::to_string(next_relay_) + " " + std::to_string(version_);
        if (version_ >= 3) {
            relay.protocol = kProtocolTimestamped;
            payload += " " + std::to_string(now);
        } else {
            relay.protocol = kProtocolPlain;
        }
        relay.payload = std::move(payload);
        if (context().send("OSPF", std::move(relay))) ++next_relay_;
    }

    const char* packet_;
    const char* monitor_env_;
    std::uint16_t monitor_default_;
    int version_;
    UdpSender monitor_;
    bool active_ = false;
    long long next_relay_ = 1;
};

}  // namespace nonstop::router
