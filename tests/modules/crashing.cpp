// A module of kind "crashing" whose handler dies of a fatal signal on request, for the crash
// black box: kCrash writes through a null pointer (SIGSEGV), kAbort calls abort() (SIGABRT).
// Every other message is only counted; the count is its state.
#include <nonstop/module.hpp>

#include <cstdlib>
#include <string>

#include "test_messages.hpp"

namespace {

namespace messages = nonstop::test::messages;

class Crashing : public nonstop::Module {
public:
    void handle(const nonstop::Message& m) override {
        if (m.type == messages::kCrash) {
            volatile int* volatile nowhere = nullptr;
            *nowhere = 1;
        }
        if (m.type == messages::kAbort) std::abort();
        ++count_;
    }
    nonstop::State put_state() override { return {1, std::to_string(count_)}; }
    void get_state(const nonstop::State& s) override {
        if (s.schema == 1) count_ = std::stol(s.bytes);
    }

private:
    long count_ = 0;
};

}  // namespace

NONSTOP_MODULE(Crashing, "crashing", "1")
