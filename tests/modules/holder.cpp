// A module whose state is a byte string of any size, for the state hand-over (issue 13):
// HOLDER_TAKES builds override take_state() and keep the bytes they are handed; the others only
// have get_state(), as modules written before take_state() existed. Each reports to the probe
// (NAME.*): how it restored its state (restored_by: take_state or get_state; restored_in: the
// version that restored last), where its state's
// bytes lie (state_data) and where its put_state() handed them from (put_data), so a test sees
// whether they were moved or copied; bytes: the size of its state after each step.
// Options, read from the probe: NAME.state_bytes = the size of a fresh state (initialize());
// NAME.move_out = "1": put_state() moves the state out instead of copying it; NAME.refuse =
// VERSION: that version refuses any checkpoint (throws before touching it).
#include <nonstop/module.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "probe.hpp"
#include "test_messages.hpp"

#ifndef HOLDER_VERSION
#error HOLDER_VERSION must be defined
#endif

namespace {

std::string address(const std::string& bytes) {
    return std::to_string(reinterpret_cast<std::uintptr_t>(bytes.data()));
}

class Holder : public nonstop::Module {
public:
    void initialize() override {
        if (auto size = probe::get(key("state_bytes")); !size.empty())
            state_.assign(std::stoul(size), 'h');
        report();
    }

    void handle(const nonstop::Message& m) override {
        state_ += m.payload;
        report();
        probe::record({context().name(), context().version(), m.sender, m.type, m.payload});
    }

    nonstop::State put_state() override {
        nonstop::State s{1, probe::get(key("move_out")) == "1" ? std::move(state_) : state_};
        probe::set(key("put_data"), address(s.bytes));
        return s;
    }

    void get_state(const nonstop::State& s) override {
        refuse();
        state_ = s.bytes;
        report();
        restored("get_state");
    }

#ifdef HOLDER_TAKES
    void take_state(nonstop::State&& s) override {
        refuse();
        state_ = std::move(s.bytes);
        report();
        restored("take_state");
    }
#endif

private:
    std::string key(const char* what) { return context().name() + "." + what; }
    void refuse() {
        if (probe::get(key("refuse")) == HOLDER_VERSION)
            throw std::runtime_error("version " HOLDER_VERSION " was told to refuse its state");
    }
    // Last, after report(): a test that sees the version that restored last sees its bytes too.
    void restored(const char* how) {
        probe::set(key("restored_in"), HOLDER_VERSION);
        probe::set(key("restored_by"), how);
    }
    void report() {
        probe::set(key("bytes"), std::to_string(state_.size()));
        probe::set(key("state_data"), address(state_));
    }

    std::string state_;
};

}  // namespace

NONSTOP_MODULE(Holder, "holder", HOLDER_VERSION)
