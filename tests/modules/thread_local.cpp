// A module with a thread-local of its own whose destructor runs when its thread ends: glibc
// keeps such a library mapped until then, so the runtime never runs it on a thread kept for
// reuse (Config::module_thread_keep). Reports its thread (NAME.tid) to the probe, and counts
// what it handled in the thread-local.
#include <unistd.h>
#include <nonstop/module.hpp>

#include <string>

#include "probe.hpp"

namespace {

thread_local std::string seen;  // non-trivial: its destructor is registered on first use

class ThreadLocal : public nonstop::Module {
public:
    void initialize() override {
        seen = "initialized";
        probe::set(context().name() + ".tid", std::to_string(::gettid()));
    }
    void handle(const nonstop::Message& m) override {
        seen += m.payload;
        probe::set(context().name() + ".seen", seen);
    }
};

}  // namespace

NONSTOP_MODULE(ThreadLocal, "thread_local", "1")
