// The framework's figures, each against its baseline measured in the same run (issues #6, #13).
// Prints one table; a figure that misses its target is marked, not failed.
//   core_bench [--quick] [--samples FILE] [--figures FILE] [--modules N]
//     --samples  FILE receives the idle blackout samples (ms), one a line
//     --figures  FILE receives "key<TAB>measured<TAB>baseline<TAB>unit" lines, the keys of
//                scripts/bench --json (one round; scripts/bench aggregates the rounds)
//     --modules  how many idle modules the many-modules figure loads (default 10000)
//     --only     LIST runs only these parts, comma-separated: throughput, latency, blackout,
//                state, backlog, load, modules
//     --state-samples / --backlog-samples / --module-samples FILE
//                "x median" lines for the plots: checkpoint KiB → ms, queued messages → ms,
//                modules loaded → µs
#include <nonstop/runtime.hpp>

#include <ace/Condition_Thread_Mutex.h>
#include <ace/Message_Block.h>
#include <ace/Message_Queue.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "probe.hpp"

using namespace nonstop;
using Clock = std::chrono::steady_clock;

namespace {

bool quick = false;

struct Stats {
    double median = 0, p99 = 0, max = 0, min = 0;
};

Stats stats(std::vector<double> v) {
    if (v.empty()) return {};
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
        return v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))];
    };
    return {at(0.5), at(0.99), v.back(), v.front()};
}

double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Row {
    std::string figure, measured, baseline, ratio, target, met;
};
std::vector<Row> rows;

// Machine-readable figures for scripts/bench: ratio = measured / baseline.
struct Figure {
    std::string key;
    double measured, baseline;
    std::string unit;
};
std::vector<Figure> figures;
double idle_blackout_median_us = 0, rtt_median_us = 0;  // for the Erlang side-by-side
int many_modules_count = 10000;
std::map<std::string, std::ostringstream> plot_data;  // "state", "backlog", "modules"

void figure(std::string key, double measured, double baseline, std::string unit) {
    figures.push_back({std::move(key), measured, baseline, std::move(unit)});
}

std::string fmt(const char* f, double a) {
    char b[128];
    std::snprintf(b, sizeof b, f, a);
    return b;
}
std::string fmt(const char* f, double a, double c) {
    char b[128];
    std::snprintf(b, sizeof b, f, a, c);
    return b;
}

Config bench_config() {
    Config c;
    c.module_path = {NONSTOP_BENCH_MODULE_DIR};
    return c;
}

void wait_handled(Runtime& rt, const std::string& name, std::uint64_t n) {
    while (rt.info(name)->handled < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

// --- throughput -----------------------------------------------------------------------------

double nonstop_throughput(int producers, long per_producer) {
    Runtime rt(bench_config());
    rt.load("sink", "libbench_v1.so");
    const auto port = rt.port("sink");
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&] {
            for (long i = 0; i < per_producer; ++i) port->send(Message{1, 1, "p", {}});
        });
    for (auto& t : threads) t.join();
    wait_handled(rt, "sink", static_cast<std::uint64_t>(producers * per_producer));
    return producers * per_producer / since(start);
}

// The same messages, allocated the same way, through a bare ACE queue to a bare consumer.
double raw_throughput(int producers, long per_producer) {
    ACE_Message_Queue<ACE_MT_SYNCH> queue(1'000'000, 1'000'000);
    std::atomic<long> handled{0};
    struct Sink {
        virtual ~Sink() = default;
        virtual void handle(const Message&) { ++count; }
        long count = 0;
    } sink;
    const long total = producers * per_producer;
    std::thread consumer([&] {
        for (long i = 0; i < total; ++i) {
            ACE_Message_Block* b = nullptr;
            queue.dequeue_head(b);
            std::unique_ptr<Message> m(reinterpret_cast<Message*>(b->base()));
            b->release();
            sink.handle(*m);
            handled.fetch_add(1, std::memory_order_relaxed);
        }
    });
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p)
        threads.emplace_back([&] {
            for (long i = 0; i < per_producer; ++i) {
                auto* m = new Message{1, 1, "p", {}};
                queue.enqueue_tail(new ACE_Message_Block(reinterpret_cast<const char*>(m), 1));
            }
        });
    for (auto& t : threads) t.join();
    while (handled.load() < total) std::this_thread::sleep_for(std::chrono::microseconds(200));
    const double rate = total / since(start);
    consumer.join();
    return rate;
}

void throughput() {
    const long total = quick ? 200'000 : 2'000'000;
    const int runs = quick ? 3 : 7;
    for (int producers : {1, 3}) {
        std::vector<double> ours, raw;
        for (int r = 0; r < runs; ++r) {
            raw.push_back(raw_throughput(producers, total / producers));
            ours.push_back(nonstop_throughput(producers, total / producers));
        }
        const Stats o = stats(ours), b = stats(raw);
        const double ratio = o.median / b.median;
        figure("throughput_ratio_" + std::to_string(producers) + "p", o.median, b.median, "msg/s");
        rows.push_back({"messages/s, " + std::to_string(producers) + " producer(s) → 1 module",
                        fmt("%.2fM ±%.2f", o.median / 1e6, (o.max - o.min) / 2e6),
                        fmt("%.2fM ±%.2f", b.median / 1e6, (b.max - b.min) / 2e6),
                        fmt("%.2f", ratio), "≥ 0.90", ratio >= 0.90 ? "yes" : "NO"});
    }
}

// --- round-trip latency -----------------------------------------------------------------------

std::vector<double> nonstop_round_trips(long rounds) {
    probe::clear();
    Runtime rt(bench_config());
    rt.load("ping", "libpingpong.so");
    rt.load("pong", "libpingpong.so");
    rt.send("ping", Message{1, 1, {}, std::to_string(rounds) + " pong"});
    while (probe::get("ping.samples").empty())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::vector<double> out;
    std::istringstream in(probe::get("ping.samples"));
    for (long ns; in >> ns;) out.push_back(ns / 1000.0);
    return out;
}

std::vector<double> raw_round_trips(long rounds) {
    ACE_Message_Queue<ACE_MT_SYNCH> a(1'000'000, 1'000'000), b(1'000'000, 1'000'000);
    auto put = [](ACE_Message_Queue<ACE_MT_SYNCH>& q) {
        auto* m = new Message{2, 1, "x", {}};
        q.enqueue_tail(new ACE_Message_Block(reinterpret_cast<const char*>(m), 1));
    };
    auto take = [](ACE_Message_Queue<ACE_MT_SYNCH>& q) {
        ACE_Message_Block* blk = nullptr;
        q.dequeue_head(blk);
        delete reinterpret_cast<Message*>(blk->base());
        blk->release();
    };
    std::thread pong([&] {
        for (long i = 0; i < rounds; ++i) {
            take(b);
            put(a);
        }
    });
    std::vector<double> out;
    out.reserve(rounds);
    auto last = Clock::now();
    put(b);
    for (long i = 0; i < rounds; ++i) {
        take(a);
        const auto now = Clock::now();
        out.push_back(std::chrono::duration<double, std::micro>(now - last).count());
        last = now;
        if (i + 1 < rounds) put(b);
    }
    pong.join();
    return out;
}

void latency() {
    const long rounds = quick ? 5'000 : 50'000;
    const Stats o = stats(nonstop_round_trips(rounds)), b = stats(raw_round_trips(rounds));
    figure("rtt_ratio", o.median, b.median, "us");
    rtt_median_us = o.median;
    rows.push_back({"round trip through two proxies, median", fmt("%.1f µs", o.median),
                    fmt("%.1f µs", b.median), fmt("%.2f", o.median / b.median), "≤ 1.2",
                    o.median / b.median <= 1.2 ? "yes" : "NO"});
    rows.push_back({"round trip through two proxies, p99", fmt("%.1f µs", o.p99),
                    fmt("%.1f µs", b.p99), fmt("%.2f", o.p99 / b.p99), "≤ 1.2",
                    o.p99 / b.p99 <= 1.2 ? "yes" : "NO"});
}

// --- blackout ----------------------------------------------------------------------------------

// One thread wakes another through a condition variable: the smallest hand-off a swap can cost.
double wakeup_handoff_us() {
    std::mutex m;
    std::condition_variable cv;
    std::vector<double> samples;
    Clock::time_point sent;
    bool flag = false, done = false;
    std::thread waiter([&] {
        std::unique_lock lock(m);
        for (;;) {
            cv.wait(lock, [&] { return flag || done; });
            if (done) return;
            samples.push_back(
                std::chrono::duration<double, std::micro>(Clock::now() - sent).count());
            flag = false;
            cv.notify_all();
        }
    });
    for (int i = 0; i < 1000; ++i) {
        std::unique_lock lock(m);
        sent = Clock::now();
        flag = true;
        cv.notify_all();
        cv.wait(lock, [&] { return !flag; });
    }
    {
        std::lock_guard lock(m);
        done = true;
    }
    cv.notify_all();
    waiter.join();
    return stats(samples).median;
}

// Sends one message to "m" as soon as its proxy buffers, each time a swap of "m" begins, so that
// every swap has a first buffered message.
class Injector {
public:
    explicit Injector(Runtime& rt) : rt_(rt) {
        token_ = rt.observe([this](const LifecycleEvent& e) {
            if (e.module != "m" || e.step != Step::disable) return;
            std::lock_guard lock(mutex_);
            armed_ = true;
            armed_round_ = completed_;
            cv_.notify_all();
        });
        thread_ = std::thread([this] { run(); });
    }
    ~Injector() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
        rt_.unobserve(token_);
    }
    void swap_completed() { ++completed_; }
    std::uint64_t injected() const { return injected_; }

private:
    void run() {
        const auto port = rt_.port("m");
        for (;;) {
            int round;
            {
                std::unique_lock lock(mutex_);
                cv_.wait(lock, [&] { return armed_ || stop_; });
                if (stop_) return;
                armed_ = false;
                round = armed_round_;  // the swap that armed it (it may end before this wakes)
            }
            // Inject once the proxy buffers; a swap that ends first just goes unmeasured.
            while (!rt_.info("m")->in_transaction && completed_ == round) std::this_thread::yield();
            if (completed_ == round) {
                port->send(Message{1, 1, "injector", {}});
                ++injected_;
            }
        }
    }

    Runtime& rt_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool armed_ = false, stop_ = false;
    int armed_round_ = 0;
    std::atomic<int> completed_{0};
    std::atomic<std::uint64_t> injected_{0};
    std::uint64_t token_ = 0;
    std::thread thread_;
};

// `producers` threads sending to "m" at `rate` messages/s in all, until destroyed.
class Flood {
public:
    Flood(Runtime& rt, int producers, double rate) {
        for (int p = 0; p < producers; ++p)
            threads_.emplace_back([this, &rt, producers, rate] {
                const auto port = rt.port("m");
                const auto period =
                    std::chrono::nanoseconds(static_cast<long>(1e9 * producers / rate));
                auto next = Clock::now();
                while (!stop_) {
                    port->send(Message{1, 1, "load", {}});
                    ++sent;
                    next += period;
                    std::this_thread::sleep_until(next);
                }
            });
    }
    ~Flood() { stop(); }
    void stop() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    std::atomic<std::uint64_t> sent{0};

private:
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
};

// Replaces "m" `swaps` times between two versions, a message injected into each swap's buffer;
// `backlog` messages are sent before each. Returns the blackouts in ms; with `lost`, how many
// accepted messages "m" did not handle.
std::vector<double> blackouts(Runtime& rt, int swaps, std::uint64_t* lost = nullptr,
                              int producers = 0, double rate = 0, long backlog = 0) {
    const auto handled_before = rt.info("m")->handled;  // before the flood starts
    std::uint64_t sent = 0, injected = 0;
    std::vector<double> out;
    {
        Injector injector(rt);
        Flood flood(rt, producers, rate);
        for (int i = 0; i < swaps; ++i) {
            if (backlog > 0) {  // queued before the swap: the old version serves it first
                const auto port = rt.port("m");
                for (long b = 0; b < backlog; ++b) port->send(Message{1, 1, "backlog", {}});
                sent += static_cast<std::uint64_t>(backlog);
            }
            auto report = rt.replace("m", i % 2 ? "libbench_v1.so" : "libbench_v2.so");
            if (!report.ok()) {
                std::fprintf(stderr, "%s", report.to_string().c_str());
                std::exit(1);
            }
            injector.swap_completed();
            if (report.targets[0].buffered > 0)
                out.push_back(
                    std::chrono::duration<double, std::milli>(report.targets[0].blackout).count());
        }
        flood.stop();
        sent += flood.sent;
        injected = injector.injected();
    }
    if (lost) {
        const auto expected = handled_before + sent + injected;
        const auto deadline = Clock::now() + std::chrono::seconds(10);
        while (rt.info("m")->handled < expected && Clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        *lost = expected - std::min(expected, rt.info("m")->handled);
    }
    return out;
}

std::vector<double> idle_samples;

// Blackout against the messages already queued in the old version when the swap begins.
// Each message costs the module 1 µs, so that the backlog sent just before a swap is still
// queued when it begins: the old version serves it all before the new one serves anything.
void backlog() {
    setenv("NONSTOP_BENCH_STATE_BYTES", "1024", 1);
    setenv("NONSTOP_BENCH_WORK_NS", "1000", 1);
    for (long queued : {0L, 100L, 1000L, 10'000L, 100'000L}) {
        if (quick && queued > 10'000) break;
        Runtime rt(bench_config());
        rt.load("m", "libbench_v1.so");
        const Stats s = stats(blackouts(rt, quick ? 20 : 50, nullptr, 0, 0, queued));
        plot_data["backlog"] << queued << ' ' << s.median << '\n';
        rows.push_back(
            {"blackout, " + std::to_string(queued) + " messages sent (1 µs each), median",
             fmt("%.3f ms", s.median), "", "", "", ""});
    }
    unsetenv("NONSTOP_BENCH_STATE_BYTES");
    unsetenv("NONSTOP_BENCH_WORK_NS");
}

void blackout() {
    setenv("NONSTOP_BENCH_STATE_BYTES", "1024", 1);
    const double handoff = wakeup_handoff_us();
    {
        Runtime rt(bench_config());
        rt.load("m", "libbench_v1.so");
        idle_samples = blackouts(rt, quick ? 200 : 1000);
    }
    const Stats s = stats(idle_samples);
    figure("blackout_median_handoffs", s.median * 1000, handoff, "us");
    figure("blackout_p99_handoffs", s.p99 * 1000, handoff, "us");
    idle_blackout_median_us = s.median * 1000;
    rows.push_back({"blackout, idle, 1 KiB state, median", fmt("%.0f µs", s.median * 1000),
                    fmt("%.0f µs wake-up", handoff), fmt("%.1f", s.median * 1000 / handoff),
                    "≤ 200 µs", s.median * 1000 <= 200 ? "yes" : "NO"});
    rows.push_back({"blackout, idle, p99 / max", fmt("%.2f / %.2f ms", s.p99, s.max), "", "",
                    "p99 ≤ 2 ms", s.p99 <= 2 ? "yes" : "NO"});
    {
        Runtime rt(bench_config());
        rt.load("m", "libbench_v1.so");
        std::uint64_t lost = 0;
        const Stats l = stats(blackouts(rt, quick ? 100 : 300, &lost, 3, 100'000));
        rows.push_back({"blackout, 3 producers at 100k msg/s, p99 / max",
                        fmt("%.2f / %.2f ms", l.p99, l.max), "", "lost " + std::to_string(lost),
                        "p99 ≤ 5 ms, 0 lost", l.p99 <= 5 && lost == 0 ? "yes" : "NO"});
    }
    unsetenv("NONSTOP_BENCH_STATE_BYTES");
}

// The median blackout of swaps carrying a `size`-byte state, which every swap must hand over
// for real: later versions start empty (the variable is unset after the first load), and the
// state is checked at the end. Releases keep checkpoints up to `keep` bytes (restored by a
// copy, get_state) and hand larger ones over by move (take_state).
double state_blackout(long size, std::size_t keep) {
    setenv("NONSTOP_BENCH_STATE_BYTES", std::to_string(size).c_str(), 1);
    Config config = bench_config();
    config.checkpoint_keep_bytes = keep;
    Runtime rt(config);
    rt.load("m", "libbench_v1.so");
    unsetenv("NONSTOP_BENCH_STATE_BYTES");
    const Stats s = stats(blackouts(rt, 31));  // the idle blackout is bimodal: enough for a median
    const auto after = rt.checkpoint("m");
    if (after.size() != 1 || after[0].bytes.size() != static_cast<std::size_t>(size)) {
        std::fprintf(stderr, "the %ld-byte state did not survive the swaps\n", size);
        std::exit(1);
    }
    return s.median;
}

// Blackout against state size, both ways a new version can get its checkpoint. The figure is
// what the default Config does: 1 KiB is kept (copied), 256 MiB is over checkpoint_keep_bytes
// and moved.
void state_size() {
    const std::size_t default_keep = Config{}.checkpoint_keep_bytes;
    double one_kib_ms = 0;
    for (long size : {1L << 10, 1L << 20, 16L << 20, 64L << 20, 256L << 20}) {
        if (quick && size > (16L << 20)) break;
        const double moved = state_blackout(size, 0);
        const double copied = state_blackout(size, static_cast<std::size_t>(-1));
        std::string a(static_cast<std::size_t>(size), 'x'), b(static_cast<std::size_t>(size), 'y');
        const auto t = Clock::now();
        std::memcpy(b.data(), a.data(), a.size());
        const double copy_ms = since(t) * 1000;
        const double by_default = static_cast<std::size_t>(size) > default_keep ? moved : copied;
        if (size == (1L << 10)) one_kib_ms = by_default;
        plot_data["state"] << (size >> 10) << ' ' << moved << ' ' << copied << '\n';
        if (size == (256L << 20))
            figure("state_256mib_blackout_ratio", by_default, one_kib_ms, "ms");
        const std::string label = "blackout, state " + std::to_string(size >> 10) + " KiB";
        rows.push_back({label + ", taken by move, median", fmt("%.3f ms", moved),
                        fmt("%.3f ms at 1 KiB", one_kib_ms), fmt("%.2f", moved / one_kib_ms), "≤ 2",
                        moved <= 2 * one_kib_ms ? "yes" : "NO"});
        const double gbps = size / (copied / 1000) / 1e9;
        rows.push_back({label + ", kept: copied, median", fmt("%.2f ms", copied),
                        fmt("%.2f ms memcpy", copy_ms), fmt("%.2f GB/s", gbps), "≥ 1 GB/s",
                        gbps >= 1 || size < (1L << 20) ? "yes" : "NO"});
    }
}

// --- load / unload cycle ------------------------------------------------------------------------

long resident_kib() {
    std::ifstream statm("/proc/self/statm");
    long pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

bool mapped(const std::string& fragment) {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.find(fragment) != std::string::npos) return true;
    return false;
}

// Microseconds per call of `cycle`, one figure per batch of `per` calls.
template <class F>
void time_batch(F&& cycle, int per, std::vector<double>& out) {
    const auto t = Clock::now();
    for (int i = 0; i < per; ++i) cycle();
    out.push_back(since(t) * 1e6 / per);
}

// One load and unload of module "m" in `rt`.
auto load_unload(Runtime& rt) {
    return [&rt] {
        rt.load("m", "libbench_v1.so");
        rt.unload("m");
    };
}

// Resident memory over many replaces of one module, and its libraries unmapped after it leaves.
void replace_growth(Runtime& rt) {
    const int replaces = quick ? 1000 : 10000;
    rt.load("m", "libbench_v1.so");
    for (int i = 0; i < 200; ++i) rt.replace("m", i % 2 ? "libbench_v1.so" : "libbench_v2.so");
    const long before = resident_kib();
    for (int i = 0; i < replaces; ++i) rt.replace("m", i % 2 ? "libbench_v1.so" : "libbench_v2.so");
    const long growth = resident_kib() - before;
    rt.unload("m");
    const bool gone = !mapped("libbench_v1.so") && !mapped("libbench_v2.so");
    rows.push_back({"resident growth over " + std::to_string(replaces) + " replaces",
                    std::to_string(growth) + " KiB", "", gone ? "unmapped" : "STILL MAPPED",
                    "< 1 MiB, unmapped", growth < 1024 && gone ? "yes" : "NO"});
}

// The least a load and an unload can cost when module code runs on a thread other than the
// caller's, as containment requires (a hook that hangs must not hold the caller): the bare cycle
// plus four hand-offs between the caller and a parked thread (start, initialized, end, ended).
class IsolatedCycle {
public:
    explicit IsolatedCycle(std::string path)
        : path_(std::move(path)), thread_([this] { serve(); }) {}
    ~IsolatedCycle() {
        hand(-1);
        thread_.join();
    }
    void operator()() {
        void* h = dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h || !dlsym(h, "nonstop_module_descriptor")) std::abort();
        hand(1);  // initialize() on the module's thread, and back
        hand(3);  // terminate() there, and back
        dlclose(h);
    }

private:
    void hand(int step) {
        std::unique_lock lock(mutex_);
        step_ = step;
        cv_.notify_all();
        if (step > 0) cv_.wait(lock, [&] { return step_ == step + 1; });
    }
    void serve() {
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [&] { return step_ == 1 || step_ == 3 || step_ < 0; });
            if (step_ < 0) return;
            ++step_;
            cv_.notify_all();
        }
    }
    std::string path_;
    std::mutex mutex_;
    std::condition_variable cv_;
    int step_ = 0;
    std::thread thread_;
};

void load_cycle() {
    // Batches of each kind take turns, so that the figure and its baseline see the same load on
    // a shared machine; each is the median of its batches.
    const int batches = quick ? 15 : 80, per = 20;
    const std::string path = std::string(NONSTOP_BENCH_MODULE_DIR) + "/libbench_v1.so";
    auto bare = [&] {
        void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h || !dlsym(h, "nonstop_module_descriptor")) std::abort();
        dlclose(h);
    };
    Runtime rt(bench_config());
    // Without the cache of verified copies, every load reads, checks, hashes and copies the
    // file, as the first load of a new or changed file does.
    Config uncached = bench_config();
    uncached.library_cache_entries = 0;
    Runtime uncached_rt(uncached);
    // Module threads kept for reuse (Config::module_thread_keep): a wake-up for a thread start.
    Config kept = bench_config();
    kept.module_thread_keep = std::chrono::seconds(10);
    Runtime kept_rt(kept);
    // What every module instance costs by default (its own ACE task thread), for comparison.
    auto thread = [] { std::thread([] {}).join(); };
    IsolatedCycle isolated(path);
    std::vector<double> bare_b, ours_b, first_b, kept_b, thread_b, floor_b;
    for (int b = 0; b < batches; ++b) {
        time_batch(bare, per, bare_b);
        time_batch(isolated, per, floor_b);
        time_batch(load_unload(rt), per, ours_b);
        time_batch(load_unload(uncached_rt), per / 4, first_b);
        time_batch(load_unload(kept_rt), per, kept_b);
        time_batch(thread, per, thread_b);
    }
    const double bare_us = stats(bare_b).median, ours_us = stats(ours_b).median;
    const double first_us = stats(first_b).median, thread_us = stats(thread_b).median;
    const double kept_us = stats(kept_b).median, floor_us = stats(floor_b).median;
    figure("load_cycle_ratio", ours_us, bare_us, "us");
    figure("load_cycle_floor_ratio", floor_us, bare_us, "us");
    figure("load_cycle_over_floor", ours_us, floor_us, "us");
    figure("load_cycle_kept_threads_over_floor", kept_us, floor_us, "us");
    figure("load_cycle_uncached_ratio", first_us, bare_us, "us");
    figure("load_cycle_kept_threads_ratio", kept_us, bare_us, "us");
    rows.push_back({"load + create + destroy + unload", fmt("%.0f µs", ours_us),
                    fmt("%.0f µs dlopen/dlsym/dlclose", bare_us), fmt("%.2f", ours_us / bare_us),
                    "≤ 1.5", ours_us / bare_us <= 1.5 ? "yes" : "NO"});
    rows.push_back({"  the same, file new or changed (read, hash, copy)", fmt("%.0f µs", first_us),
                    "", fmt("%.2f", first_us / bare_us), "", ""});
    rows.push_back({"  of which: one thread start + join (baseline)", "", fmt("%.0f µs", thread_us),
                    "", "", ""});
    rows.push_back({"  the same, module threads kept (module_thread_keep)", fmt("%.0f µs", kept_us),
                    "", fmt("%.2f", kept_us / bare_us), "≤ 1.5",
                    kept_us / bare_us <= 1.5 ? "yes" : "NO"});
    rows.push_back({"  floor: the bare cycle + 4 hand-offs to a parked thread", "",
                    fmt("%.0f µs", floor_us), fmt("%.2f", floor_us / bare_us), "", ""});
    rows.push_back({"  ours over that floor; kept threads over it", "", "",
                    fmt("%.2f; %.2f", ours_us / floor_us, kept_us / floor_us), "", ""});
    replace_growth(rt);
}

// --- many modules ------------------------------------------------------------------------------

struct SwapAndSend {
    double blackout_median_us, send_rate;
};

// The idle blackout of "m" and the send rate into it while `idle` other modules sit loaded.
SwapAndSend with_idle_modules(int idle, long& resident_growth_kib) {
    Runtime rt(bench_config());
    const long before = resident_kib();
    for (int i = 0; i < idle; ++i) {
        auto report = rt.load("idle" + std::to_string(i), "libbench_v1.so");
        if (!report.ok()) {
            std::fprintf(stderr, "loading idle module %d failed: %s\n", i, report.reason.c_str());
            std::exit(1);
        }
    }
    resident_growth_kib = resident_kib() - before;
    rt.load("m", "libbench_v1.so");
    const double blackout_us = stats(blackouts(rt, quick ? 100 : 300)).median * 1000;
    // The median of several rounds: one round is at the mercy of whatever else the shared
    // machine runs at that moment.
    const long total = quick ? 200'000 : 1'000'000;
    const int rounds = 5;
    const auto port = rt.port("m");
    std::vector<double> rates;
    for (int r = 0; r < rounds; ++r) {
        const auto handled = rt.info("m")->handled;
        const auto start = Clock::now();
        for (long i = 0; i < total / rounds; ++i) port->send(Message{1, 1, "p", {}});
        wait_handled(rt, "m", handled + static_cast<std::uint64_t>(total / rounds));
        rates.push_back((total / rounds) / since(start));
    }
    rt.unload_all();
    return {blackout_us, stats(rates).median};
}

void many_modules() {
    setenv("NONSTOP_BENCH_STATE_BYTES", "1024", 1);
    const int count = quick ? std::min(many_modules_count, 1000) : many_modules_count;
    long growth_one = 0, growth_many = 0;
    const SwapAndSend one = with_idle_modules(0, growth_one);
    plot_data["modules"] << 1 << ' ' << one.blackout_median_us << '\n';
    for (int middle : {100, 1000}) {
        if (middle >= count) break;
        long growth = 0;
        const SwapAndSend m = with_idle_modules(middle, growth);
        plot_data["modules"] << middle + 1 << ' ' << m.blackout_median_us << '\n';
    }
    const SwapAndSend many = with_idle_modules(count, growth_many);
    plot_data["modules"] << count + 1 << ' ' << many.blackout_median_us << '\n';
    const std::string label = std::to_string(count) + " idle modules";
    figure("modules_10k_blackout_ratio", many.blackout_median_us, one.blackout_median_us, "us");
    figure("modules_10k_send_ratio", many.send_rate, one.send_rate, "msg/s");
    figure("modules_10k_rss_kib", static_cast<double>(growth_many), 1, "KiB");
    rows.push_back({"blackout, idle, beside " + label, fmt("%.0f µs", many.blackout_median_us),
                    fmt("%.0f µs alone", one.blackout_median_us),
                    fmt("%.2f", many.blackout_median_us / one.blackout_median_us), "≤ 1.5",
                    many.blackout_median_us / one.blackout_median_us <= 1.5 ? "yes" : "NO"});
    rows.push_back({"messages/s, 1 producer, beside " + label, fmt("%.2fM", many.send_rate / 1e6),
                    fmt("%.2fM alone", one.send_rate / 1e6),
                    fmt("%.2f", many.send_rate / one.send_rate), "≥ 0.9",
                    many.send_rate / one.send_rate >= 0.9 ? "yes" : "NO"});
    rows.push_back({"  resident memory of " + label, fmt("%.0f MiB", growth_many / 1024.0), "",
                    fmt("%.0f KiB each", static_cast<double>(growth_many) / count), "", ""});
    unsetenv("NONSTOP_BENCH_STATE_BYTES");
}

// Modules loaded one by one into a runtime with a release store (a state directory): a load at
// the end against a load at the start. A store that rewrote the whole release per command made
// each load cost more with every module already loaded (quadratic in all); one that writes
// what a command changed keeps the ratio near 1. A replace beside them is printed too.
void store_scale() {
    const int count = quick ? 1000 : 5000;
    char dir[] = "/tmp/nonstop-bench-store-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    std::vector<double> load_us(static_cast<std::size_t>(count));
    std::vector<double> replace_us;
    {
        Config config = bench_config();
        config.state_dir = dir;
        Runtime rt(config);
        for (int i = 0; i < count; ++i) {
            const auto t = Clock::now();
            if (!rt.load("m" + std::to_string(i), "libbench_v1.so").ok()) std::abort();
            load_us[static_cast<std::size_t>(i)] = since(t) * 1e6;
        }
        for (int r = 0; r < 10; ++r) {
            const auto t = Clock::now();
            if (!rt.replace("m0", r % 2 ? "libbench_v1.so" : "libbench_v2.so").ok()) std::abort();
            replace_us.push_back(since(t) * 1e6);
        }
    }
    std::filesystem::remove_all(dir);
    const auto tenth = static_cast<std::ptrdiff_t>(count / 10);
    const double first =
        stats(std::vector<double>(load_us.begin(), load_us.begin() + tenth)).median;
    const double last = stats(std::vector<double>(load_us.end() - tenth, load_us.end())).median;
    const double replace = stats(replace_us).median;
    figure("store_load_last_over_first_ratio", last, first, "us");
    const std::string label = std::to_string(count);
    rows.push_back({"load, state dir: last 10% of " + label + " / first 10%", fmt("%.0f µs", last),
                    fmt("%.0f µs", first), fmt("%.2f", last / first), "", ""});
    rows.push_back({"  replace beside " + label + " modules, state dir",
                    fmt("%.1f ms", replace / 1e3), "", "", "", ""});
}

}  // namespace

int main(int argc, char** argv) {
    std::string samples_file, figures_file, only;
    std::map<std::string, std::string> plot_files;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) quick = true;
        if (std::strcmp(argv[i], "--samples") == 0 && i + 1 < argc) samples_file = argv[++i];
        if (std::strcmp(argv[i], "--figures") == 0 && i + 1 < argc) figures_file = argv[++i];
        if (std::strcmp(argv[i], "--state-samples") == 0 && i + 1 < argc)
            plot_files["state"] = argv[++i];
        if (std::strcmp(argv[i], "--backlog-samples") == 0 && i + 1 < argc)
            plot_files["backlog"] = argv[++i];
        if (std::strcmp(argv[i], "--module-samples") == 0 && i + 1 < argc)
            plot_files["modules"] = argv[++i];
        if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = std::string(",") + argv[++i] + ",";
        if (std::strcmp(argv[i], "--modules") == 0 && i + 1 < argc)
            many_modules_count = std::max(1, std::atoi(argv[++i]));
    }
    const std::pair<const char*, void (*)()> parts[] = {
        {"throughput", throughput}, {"latency", latency},  {"blackout", blackout},
        {"state", state_size},      {"backlog", backlog},  {"load", load_cycle},
        {"modules", many_modules},  {"store", store_scale}};
    for (const auto& [name, run] : parts)
        if (only.empty() || only.find(std::string(",") + name + ",") != std::string::npos) run();
    std::printf("%-50s %-22s %-26s %-12s %-20s %s\n", "figure", "nonstop", "baseline (same run)",
                "ratio", "target", "met");
    for (const auto& r : rows)
        std::printf("%-50s %-22s %-26s %-12s %-20s %s\n", r.figure.c_str(), r.measured.c_str(),
                    r.baseline.c_str(), r.ratio.c_str(), r.target.c_str(), r.met.c_str());
    if (!samples_file.empty()) {
        std::ofstream out(samples_file);
        for (double s : idle_samples) out << s << "\n";
    }
    for (const auto& [what, file] : plot_files) std::ofstream(file) << plot_data[what].str();
    if (!figures_file.empty()) {
        std::ofstream out(figures_file);
        for (const auto& f : figures)
            out << f.key << '\t' << f.measured << '\t' << f.baseline << '\t' << f.unit << '\n';
        out << "idle_blackout_median_us\t" << idle_blackout_median_us << "\t1\tus\n";
        out << "rtt_median_us\t" << rtt_median_us << "\t1\tus\n";
    }
    return 0;
}
