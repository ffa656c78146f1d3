// Very many modules in one process: the kernel's futex hash grows with them, and every module
// still serves in its own thread, in order (the figures are in tests/bench, core_bench
// --only modules).
#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <bit>
#include <thread>

#include "test_support.hpp"

#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif

namespace nonstop::test {
namespace {

constexpr int kModules = 300;

// The size of this process's private futex hash; 0 or less when the kernel has none.
int futex_slots() { return prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0); }

void load_many(Runtime& rt) {
    for (int i = 0; i < kModules; ++i) {
        auto report = rt.load("m" + std::to_string(i), "libcounter_v1.so");
        ASSERT_TRUE(report.ok()) << report.to_string();
    }
}

TEST_F(RuntimeTest, TheFutexHashGrowsWithTheModulesAndStaysAfterThem) {
    config.futex_slots_per_module = 4;
    rt();
    if (futex_slots() <= 0) GTEST_SKIP() << "this kernel gives processes no private futex hash";
    load_many(rt());
    const int grown = futex_slots();
    EXPECT_GE(grown, 4 * kModules);
    EXPECT_TRUE(std::has_single_bit(static_cast<unsigned>(grown)));
    // Every module still serves what it is sent, in order.
    for (int i = 0; i < kModules; i += 37) send_numbered(rt(), "m" + std::to_string(i), "x", 3);
    ASSERT_TRUE(probe::wait_count(3 * ((kModules + 36) / 37)));
    for (int i = 0; i < kModules; i += 37) {
        const auto seen = events_of("m" + std::to_string(i));
        ASSERT_EQ(seen.size(), 3u);
        for (int k = 0; k < 3; ++k) EXPECT_EQ(seen[k].payload, "x" + std::to_string(k));
    }
    rt().unload_all();
    EXPECT_TRUE(rt().modules().empty());
    EXPECT_EQ(futex_slots(), grown);  // never shrunk: the memory is small, a regrowth is not
}

// The watchdog scans every module each period without building snapshots: among many idle
// modules it names the one stuck in a handler, once, and no other.
TEST_F(RuntimeTest, TheWatchdogNamesTheOneStuckModuleAmongMany) {
    using namespace std::chrono_literals;
    config.stuck_after = 200ms;
    probe::close_gate("g");
    probe::set("watcher.subscribe", "upgrader stuck");
    ASSERT_TRUE(rt().load("watcher", "libcounter_v1.so").ok());
    load_many(rt());
    ASSERT_TRUE(rt().send("m123", Message{messages::kBlockOnGate, 1, {}, "g"}));
    ASSERT_TRUE(probe::wait_until_blocked("g"));
    ASSERT_TRUE(wait_until([] { return !events_of("watcher").empty(); }));
    EXPECT_EQ(events_of("watcher")[0].payload.rfind("m123 1 handle ", 0), 0u);
    for (const auto& info : rt().modules()) EXPECT_EQ(info.stuck, info.name == "m123") << info.name;
    probe::open_gate("g");
    EXPECT_TRUE(wait_until([&] { return !rt().info("m123")->stuck; }));
    EXPECT_EQ(events_of("watcher").size(), 1u);  // once, however many periods it stayed stuck
}

// The health thread sweeps the modules only when an audit may be due or modules were added: every
// one of many modules is audited all the same, and so is one loaded later.
TEST_F(RuntimeTest, EveryOneOfManyModulesIsAuditedAndSoIsALaterOne) {
    using namespace std::chrono_literals;
    config.audit_period = 200ms;
    load_many(rt());
    EXPECT_TRUE(wait_until([&] {
        const auto all = rt().modules();
        return std::all_of(all.begin(), all.end(), [](const auto& i) { return i.audited; });
    }));
    ASSERT_TRUE(rt().load("later", "libcounter_v1.so").ok());
    EXPECT_TRUE(wait_until([&] { return rt().info("later")->audited; }));
    EXPECT_TRUE(rt().info("later")->audit_healthy);
}

// glibc's stack size for new threads, when none is asked for.
std::size_t default_stack_size() {
    pthread_attr_t attr;
    std::size_t size = 0;
    if (pthread_attr_init(&attr) != 0) return 0;
    pthread_attr_getstacksize(&attr, &size);
    pthread_attr_destroy(&attr);
    return size;
}

// The configured size, or a little more under a sanitizer, which adds room of its own.
void expect_small_stack(const std::string& module) {
    const std::size_t size = std::stoul(probe::get(module + ".stack"));
    EXPECT_GE(size, 256u * 1024);
    EXPECT_LT(size, default_stack_size());
}

TEST_F(RuntimeTest, ModuleThreadsGetTheConfiguredStackSize) {
    ASSERT_GT(default_stack_size(), 1024u * 1024);  // else this test shows nothing
    config.module_stack_size = 256 * 1024;
    ASSERT_TRUE(rt().load("small", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().send("small", Message{messages::kStackSize, 1, {}, {}}));
    ASSERT_TRUE(probe::wait_count(1));
    expect_small_stack("small");
    // A replacement runs in a new thread with the same stack.
    ASSERT_TRUE(rt().replace("small", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().send("small", Message{messages::kStackSize, 1, {}, {}}));
    ASSERT_TRUE(probe::wait_count(2));
    expect_small_stack("small");
}

TEST_F(RuntimeTest, ModuleThreadsGetTheDefaultStackUnlessConfigured) {
    ASSERT_TRUE(rt().load("plain", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().send("plain", Message{messages::kStackSize, 1, {}, {}}));
    ASSERT_TRUE(probe::wait_count(1));
    EXPECT_EQ(probe::get("plain.stack"), std::to_string(default_stack_size()));
}

TEST_F(RuntimeTest, NoFutexSlotsPerModuleLeavesTheKernelsHashAlone) {
    config.futex_slots_per_module = 0;
    rt();
    const int before = futex_slots();
    if (before <= 0) GTEST_SKIP() << "this kernel gives processes no private futex hash";
    load_many(rt());
    // The kernel's own default follows the CPUs (4 buckets each), not the threads.
    const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
    EXPECT_LE(futex_slots(), std::max<int>(before, static_cast<int>(std::bit_ceil(4 * cpus))));
    EXPECT_EQ(rt().modules().size(), static_cast<std::size_t>(kModules));
}

}  // namespace
}  // namespace nonstop::test
