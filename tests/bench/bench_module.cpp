// The module the benchmarks replace: counts what it handles, carries a state of configurable
// size (NONSTOP_BENCH_STATE_BYTES when it initializes; the state-size figure unsets it after the
// first load, so later instances hold only what the swap handed them), and can take a
// configurable time to drain (its disable() works that long, as a module finishing a protocol
// exchange would) and to serve each message (NONSTOP_BENCH_WORK_NS). Versions 1 and 2 differ
// only in their version string.
#include <nonstop/module.hpp>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#define BENCH_STR2(x) #x
#define BENCH_STR(x) BENCH_STR2(x)

namespace {

long env(const char* name, long fallback) {
    const char* v = std::getenv(name);
    return v ? std::atol(v) : fallback;
}

class BenchModule : public nonstop::Module {
public:
    void initialize() override {
        drain_ms_ = env("NONSTOP_BENCH_DRAIN_MS", 0);
        work_ns_ = env("NONSTOP_BENCH_WORK_NS", 0);
        state_.assign(static_cast<std::size_t>(env("NONSTOP_BENCH_STATE_BYTES", 0)), 'x');
    }
    void handle(const nonstop::Message&) override {
        ++handled_;
        if (work_ns_ == 0) return;
        // Work per message (a busy loop, not a sleep): a backlog then takes a known time to serve.
        const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(work_ns_);
        while (std::chrono::steady_clock::now() < until) {
        }
    }
    void disable() override {
        if (drain_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(drain_ms_));
    }
    nonstop::State put_state() override { return {1, std::move(state_)}; }
    void get_state(const nonstop::State& s) override { state_ = s.bytes; }
    // The framework's only copy (the release keeps none): the bytes change owner, no copy.
    void take_state(nonstop::State&& s) override { state_ = std::move(s.bytes); }

private:
    long drain_ms_ = 0;
    long work_ns_ = 0;
    long handled_ = 0;
    std::string state_;
};

}  // namespace

NONSTOP_MODULE(BenchModule, "bench", BENCH_STR(BENCH_VERSION))
