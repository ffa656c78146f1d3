// The TIMER module of the non-stop router (thesis 5.1.2): publishes "broadcast" and notifies
// it every period (NONSTOP_ROUTER_PERIOD_MS), the engine that drives IP, OSPF and VRRP.
#include <nonstop/module.hpp>

#include <stdexcept>
#include <string>

#include "router_protocol.hpp"

#include "router_version.hpp"

namespace {

using namespace nonstop::router;

class Timer : public nonstop::Module {
public:
    void initialize() override {
        context().publish("broadcast");
        context().schedule_timer(period());
    }

    void handle(const nonstop::Message& m) override {
        if (m.type != nonstop::kTimerTick) return;
        ++ticks_;
        context().notify("broadcast",
                         nonstop::Message{kBroadcast, kProtocolPlain, {}, std::to_string(ticks_)});
    }

    nonstop::State put_state() override { return {1, std::to_string(ticks_)}; }

    void get_state(const nonstop::State& s) override {
        if (s.schema != 1) throw std::runtime_error("unknown TIMER state schema");
        ticks_ = std::stoll(s.bytes);
    }

private:
    long long ticks_ = 0;
};

}  // namespace

NONSTOP_MODULE(Timer, "TIMER", ROUTER_STR(ROUTER_VERSION))
