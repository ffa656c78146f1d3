// Candidate versions of kind "counter" for the preflight tests, each failing in one way that
// would take a host down with it (CANDIDATE_*), otherwise a small counter: it records every
// message in the probe and counts them, and its state (schema 1 or 2, as counter's) is the count.
#include <nonstop/module.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "probe.hpp"

namespace {

// A write to an unmapped page: SIGSEGV (not a null pointer, which a sanitizer would catch
// first and report as its own error).
[[maybe_unused]] void segfault() {
    volatile std::uintptr_t unmapped = 16;
    *reinterpret_cast<volatile int*>(unmapped) = 1;
}

#ifdef CANDIDATE_CTOR_CRASH
// Runs when the library is loaded, before any factory is looked up.
const int crashed_on_load = [] {
    segfault();
    return 1;
}();
#endif

class Candidate : public nonstop::Module {
public:
    void initialize() override {
#ifdef CANDIDATE_SEGV_INIT
        segfault();
#endif
#ifdef CANDIDATE_THROW_INIT
        throw std::runtime_error("no route table in the configuration");
#endif
#ifdef CANDIDATE_HANG_INIT
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
#endif
#ifdef CANDIDATE_EXIT_INIT
        ::_exit(7);
#endif
        context().send("nowhere", nonstop::Message{1, 1, {}, "sent from initialize"});
    }
    void handle(const nonstop::Message& m) override {
        ++count_;
        probe::record({context().name(), context().version(), m.sender, m.type, m.payload});
    }
    nonstop::State put_state() override { return {2, std::to_string(count_)}; }
    void get_state(const nonstop::State& s) override {
#ifdef CANDIDATE_ABORT_STATE
        std::abort();
#endif
        if (s.schema != 0) count_ = std::stol(s.bytes);
    }

private:
    long count_ = 0;
};

}  // namespace

NONSTOP_MODULE(Candidate, "counter", CANDIDATE_VERSION)
