// The smallest module: it counts what it handles, and the count is its state.
#include <nonstop/module.hpp>

#include <string>

namespace {

class Echo : public nonstop::Module {
public:
    void handle(const nonstop::Message&) override { ++count_; }
    nonstop::State put_state() override { return {1, std::to_string(count_)}; }
    void get_state(const nonstop::State& s) override { count_ = std::stol(s.bytes); }

private:
    long count_ = 0;
};

}  // namespace

NONSTOP_MODULE(Echo, "echo", "1")
