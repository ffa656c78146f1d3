// Soak: replaces one module REPLACES times (default 10^6) while PRODUCERS threads send to it
// flat out, then prints what was sent, what was served, the messages lost (must be 0), the
// replace rate and the growth of the resident set. Not part of ctest: it runs for many minutes.
//   soak_bench [REPLACES] [PRODUCERS]
#include <nonstop/runtime.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

namespace {

long resident_kib() {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

}  // namespace

int main(int argc, char** argv) {
    const long replaces = argc > 1 ? std::atol(argv[1]) : 1'000'000;
    const int producers = argc > 2 ? std::atoi(argv[2]) : 2;
    nonstop::Config config;
    config.module_path = {NONSTOP_BENCH_MODULE_DIR};
    config.queue_capacity = 10'000;  // a backlog drained well within the quiescence limit
    nonstop::Runtime rt(config);
    if (!rt.load("m", "libbench_v1.so").ok()) return 1;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> sent{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&] {
            const auto port = rt.port("m");
            std::uint64_t n = 0;
            while (!stop.load(std::memory_order_relaxed))
                n += port->send(nonstop::Message{1, 1, "soak", {}});
            sent += n;
        });
    const long rss_before = resident_kib();
    const auto begin = std::chrono::steady_clock::now();
    long failed = 0;
    for (long i = 1; i <= replaces; ++i) {
        failed += !rt.replace("m", i % 2 ? "libbench_v2.so" : "libbench_v1.so").ok();
        if (i % (replaces / 10 > 0 ? replaces / 10 : 1) == 0)
            std::printf("%8ld replaces, %ld failed, served %llu, RSS %ld KiB\n", i, failed,
                        static_cast<unsigned long long>(rt.info("m")->handled), resident_kib());
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    stop = true;
    for (auto& t : threads) t.join();
    while (rt.info("m")->handled < sent) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto served = rt.info("m")->handled;
    std::printf(
        "replaces %ld (%.0f/s), failed %ld; messages sent %llu, served %llu, lost %lld; "
        "RSS growth %ld KiB\n",
        replaces, replaces / seconds, failed, static_cast<unsigned long long>(sent.load()),
        static_cast<unsigned long long>(served),
        static_cast<long long>(sent.load()) - static_cast<long long>(served),
        resident_kib() - rss_before);
    return sent.load() == served && failed == 0 ? 0 : 1;
}
