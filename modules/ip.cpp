// The IP module of the non-stop router (thesis 5.1.2), built as versions 1-4 (ROUTER_VERSION):
// broadcasts ICMP packets and relays consecutive numbers to OSPF; version 3 speaks the
// timestamped message protocol of figure 5.8. Version 4 is a faulty release for the demo's
// probation step: three broadcasts in four fail (it throws before relaying anything, so the
// relay numbers stay consecutive) until a health rule rolls it back.
#include <nonstop/module.hpp>

#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>

#include "relay_source.hpp"

#include "router_version.hpp"

namespace {

using namespace nonstop::router;

class Ip : public RelaySource {
public:
    Ip() : RelaySource("ICMP", kIpMonitorEnv, kDefaultIpMonitorPort, ROUTER_VERSION) {}

    void handle(const nonstop::Message& m) override {
        if (m.type == kSlowDrain) {
            slow_drain_ = std::chrono::milliseconds(std::stol(m.payload));
            // The proxy puts its disable ahead of every waiting message, so this message may
            // arrive after disable() already ran: then the drain itself is made slow, which
            // delays quiescence just the same. Either way the outcome does not depend on timing.
            if (!active()) drain_slowly();
            return;
        }
        if (ROUTER_VERSION == 4 && m.type == kBroadcast && ++broadcasts_ % 4 != 0)
            throw std::runtime_error("IP 4: routing table corrupt");
        RelaySource::handle(m);
    }

    void disable() override {
        RelaySource::disable();
        drain_slowly();
    }

    // Resumption after the aborted transaction (or any start) clears the option, so the next
    // transaction is not slowed.
    void enable() override {
        slow_drain_ = std::chrono::milliseconds(0);
        RelaySource::enable();
    }

private:
    void drain_slowly() {
        const auto delay = std::exchange(slow_drain_, std::chrono::milliseconds(0));
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
    }

    std::chrono::milliseconds slow_drain_{0};
    long broadcasts_ = 0;
};

}  // namespace

NONSTOP_MODULE(Ip, "IP", ROUTER_STR(ROUTER_VERSION))
