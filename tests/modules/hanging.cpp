// A module of kind "counter" that hangs in one place (HANG_IN: initialize, enable, put_state,
// get_state, terminate or destroy) while the probe gate "hang" is closed, and otherwise records
// what it handles. Its handler also faults on request: kThrow throws the payload's text,
// kExitThread ends the thread with pthread_exit, kHangForever never returns.
#include <pthread.h>
#include <nonstop/module.hpp>

#include <cstring>
#include <stdexcept>
#include <thread>

#include "probe.hpp"
#include "test_messages.hpp"

#ifndef HANG_IN
#error HANG_IN must be defined
#endif

namespace {

namespace messages = nonstop::test::messages;

void hang(const char* hook) {
    if (std::strcmp(HANG_IN, hook) == 0) probe::wait_gate("hang");
}

class Hanging : public nonstop::Module {
public:
    ~Hanging() override { hang("destroy"); }
    void initialize() override { hang("initialize"); }
    void handle(const nonstop::Message& m) override {
        if (m.type == messages::kThrow) throw std::runtime_error(m.payload);
        if (m.type == messages::kExitThread) pthread_exit(nullptr);
        while (m.type == messages::kHangForever) std::this_thread::sleep_for(std::chrono::hours(1));
        if (m.type == messages::kBlockOnGate) probe::wait_gate(m.payload);
        probe::record({context().name(), context().version(), m.sender, m.type, m.payload});
    }
    void enable() override { hang("enable"); }
    nonstop::State put_state() override {
        hang("put_state");
        return {1, "0"};
    }
    void get_state(const nonstop::State&) override { hang("get_state"); }
    void terminate() override { hang("terminate"); }
};

}  // namespace

NONSTOP_MODULE(Hanging, "counter", "hang-" HANG_IN)
