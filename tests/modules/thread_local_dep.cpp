// A module without thread-locals of its own whose private dependency (tls_dependency) has one,
// used on its thread: glibc keeps that dependency mapped until the thread ends, so the runtime
// never runs this module on a thread kept for reuse either. Reports its thread (NAME.tid).
#include <unistd.h>
#include <nonstop/module.hpp>

#include <string>

#include "probe.hpp"

const std::string& tls_dependency_note(const std::string& s);

namespace {

class ThreadLocalDep : public nonstop::Module {
public:
    void initialize() override {
        probe::set(context().name() + ".tid", std::to_string(::gettid()));
        probe::set(context().name() + ".seen", tls_dependency_note("initialized"));
    }
    void handle(const nonstop::Message&) override {}
};

}  // namespace

#ifndef DEP_VERSION
#define DEP_VERSION "1"
#endif
NONSTOP_MODULE(ThreadLocalDep, "thread_local_dep", DEP_VERSION)
