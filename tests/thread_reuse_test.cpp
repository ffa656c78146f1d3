// Module threads kept for reuse (Config::module_thread_keep): an instance still runs on a thread
// of its own, which serves the next instance once it has ended; a library with thread-locals of
// its own never runs on a kept thread, so unloading it still unmaps it.
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

class ThreadReuseTest : public RuntimeTest {
protected:
    // Loads `name` from `library` and returns the thread its initialize() ran on.
    std::string load_on(const std::string& name, const std::string& library) {
        probe::set(name + ".tid", "");
        const auto report = rt().load(name, library);
        EXPECT_TRUE(report.ok()) << report.to_string();
        return probe::get(name + ".tid");
    }
    // Loads and unloads a counter: the thread it ran on is left parked for the next instance.
    std::string park_a_thread() {
        const auto tid = load_on("c", "libcounter_v1.so");
        EXPECT_TRUE(rt().unload("c").ok());
        return tid;
    }
};

TEST_F(ThreadReuseTest, TheNextInstanceRunsOnTheThreadTheLastOneLeft) {
    config.module_thread_keep = std::chrono::seconds(60);
    const auto first = load_on("c", "libcounter_v1.so");
    ASSERT_FALSE(first.empty());
    ASSERT_TRUE(rt().unload("c").ok());
    EXPECT_FALSE(mapped("libcounter_v1.so"));  // a parked thread holds nothing of it
    EXPECT_EQ(load_on("d", "libcounter_v2.so"), first);
    // It serves as any other: every message, in order.
    for (int i = 0; i < 100; ++i)
        ASSERT_TRUE(rt().send("d", Message{messages::kRecord, 1, {}, std::to_string(i)}));
    ASSERT_TRUE(wait_until([&] { return rt().info("d")->handled == 100; }));
    std::vector<std::string> served;
    for (const auto& e : probe::events())
        if (e.module == "d") served.push_back(e.payload);
    ASSERT_EQ(served.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(served[i], std::to_string(i));
}

TEST_F(ThreadReuseTest, WithoutKeepingEveryInstanceHasANewThread) {
    config.module_thread_keep = std::chrono::milliseconds(0);  // the default
    const auto first = load_on("c", "libcounter_v1.so");
    ASSERT_TRUE(rt().unload("c").ok());
    const auto second = load_on("c", "libcounter_v1.so");
    ASSERT_FALSE(second.empty());
    EXPECT_NE(second, first);
}

TEST_F(ThreadReuseTest, ALibraryWithThreadLocalsOfItsOwnGetsANewThreadAndUnmaps) {
    config.module_thread_keep = std::chrono::seconds(60);
    const auto parked = park_a_thread();
    const auto own = load_on("t", "libthread_local.so");
    EXPECT_NE(own, parked);
    ASSERT_TRUE(rt().send("t", Message{1, 1, {}, "+x"}));
    ASSERT_TRUE(wait_until([] { return probe::get("t.seen") == "initialized+x"; }));
    ASSERT_TRUE(rt().unload("t").ok());
    // Its thread-local's destructor ran when its thread ended, before the library was closed.
    EXPECT_TRUE(wait_until([] { return !mapped("libthread_local.so"); }));
    EXPECT_EQ(load_on("c", "libcounter_v1.so"), parked);  // the kept thread is still there
}

// Module code that cancels its own thread while it has cancellation disabled leaves the
// cancellation pending: it ends that thread once the instance has ended (the thread is not
// kept), and the next instance gets a new one that serves.
TEST_F(ThreadReuseTest, ACancellationLeftPendingEndsTheThreadNotTheNextInstance) {
    config.module_thread_keep = std::chrono::seconds(60);
    const auto parked = park_a_thread();
    EXPECT_EQ(load_on("x", "libthread_state.so"), parked);
    ASSERT_TRUE(rt().unload("x").ok());
    EXPECT_TRUE(wait_until([&] { return !std::filesystem::exists("/proc/self/task/" + parked); }));
    const auto next = load_on("c", "libcounter_v1.so");
    EXPECT_NE(next, parked);
    ASSERT_TRUE(rt().send("c", Message{messages::kRecord, 1, {}, "served"}));
    EXPECT_TRUE(wait_until([&] { return rt().info("c")->handled == 1; }));
}

// The same for thread-locals in a library the module alone brought in: its thread ends with it,
// and both libraries are unmapped by the time the unload returns.
TEST_F(ThreadReuseTest, ALibraryWhosePrivateDependencyHasThreadLocalsGetsANewThreadAndUnmaps) {
    config.module_thread_keep = std::chrono::seconds(60);
    const auto parked = park_a_thread();
    const auto own = load_on("t", "libthread_local_dep.so");
    EXPECT_NE(own, parked);
    EXPECT_EQ(probe::get("t.seen"), "initialized");
    ASSERT_TRUE(mapped("libtls_dependency.so"));
    // A new version that shares the dependency (already mapped when it loads) is no different.
    probe::set("t.tid", "");
    const auto replaced = rt().replace("t", "libthread_local_dep2.so");
    ASSERT_TRUE(replaced.ok()) << replaced.to_string();
    EXPECT_NE(probe::get("t.tid"), parked);
    ASSERT_TRUE(rt().unload("t").ok());
    EXPECT_FALSE(mapped("libtls_dependency.so"));
    EXPECT_FALSE(mapped("libthread_local_dep"));
    EXPECT_EQ(load_on("c", "libcounter_v1.so"), parked);
}

TEST_F(ThreadReuseTest, AThreadLeftInsideAHungHookIsNotReused) {
    config.module_thread_keep = std::chrono::seconds(60);
    config.initialize_timeout = std::chrono::milliseconds(200);
    const auto parked = park_a_thread();
    // The kept thread takes the hanging instance and stays in its initialize().
    probe::close_gate("hang");
    const auto hung = rt().load("h", "libhang_initialize.so");
    EXPECT_EQ(hung.outcome, Outcome::aborted) << hung.to_string();
    const auto next = load_on("c", "libcounter_v1.so");
    ASSERT_FALSE(next.empty());
    EXPECT_NE(next, parked);
    EXPECT_TRUE(rt().send("c", Message{messages::kRecord, 1, {}, "served"}));
    EXPECT_TRUE(wait_until([&] { return rt().info("c")->handled == 1; }));
    probe::open_gate("hang");  // the abandoned instance ends; its thread is free again
}

// A parked thread is not kept for ever: past Config::module_thread_keep without an instance to
// serve, it ends (while the runtime goes on), and the next instance gets a new one.
TEST_F(ThreadReuseTest, AParkedThreadEndsOnceItIsNotWantedWithinTheKeepTime) {
    config.module_thread_keep = std::chrono::milliseconds(50);
    const auto first = load_on("c", "libcounter_v1.so");
    ASSERT_FALSE(first.empty());
    ASSERT_TRUE(rt().unload("c").ok());
    EXPECT_TRUE(wait_until([&] { return !std::filesystem::exists("/proc/self/task/" + first); }));
    const auto second = load_on("c", "libcounter_v1.so");
    ASSERT_FALSE(second.empty());
    EXPECT_NE(second, first);
}

// Module code may change what its thread carries and leave it so; a kept thread is given back
// the state it started with before it serves the next instance, as a new thread would be.
TEST_F(ThreadReuseTest, AReusedThreadIsGivenBackTheStateItStartedWith) {
    config.module_thread_keep = std::chrono::seconds(60);
    const auto first = load_on("a", "libthread_state.so");
    const auto fresh = probe::get("a.found");
    EXPECT_EQ(fresh.rfind("usr2 open, name ", 0), 0u) << fresh;
    EXPECT_NE(fresh.find(", rounding other, locale global, cancel enabled, policy other, cpus "),
              std::string::npos)
        << fresh;
    EXPECT_NE(fresh.find(", alternate stack other"), std::string::npos) << fresh;
    EXPECT_EQ(fresh.find("name changed"), std::string::npos) << fresh;
    ASSERT_TRUE(rt().unload("a").ok());
    EXPECT_EQ(load_on("b", "libthread_state.so"), first);
    EXPECT_EQ(probe::get("b.found"), fresh);
}

// Thread-specific data whose destructor is in the module's library: the thread that holds it
// is not kept, and the unload returns once it has ended, its destructors run while the library
// was still mapped, and the library is gone.
TEST_F(ThreadReuseTest, AThreadLeftWithThreadSpecificDataEndsBeforeItsLibraryIsClosed) {
    config.module_thread_keep = std::chrono::seconds(60);
    const auto tid = load_on("k", "libthread_state.so");
    ASSERT_FALSE(tid.empty());
    probe::set("k.key_destroyed", "");
    ASSERT_TRUE(rt().unload("k").ok());
    EXPECT_EQ(probe::get("k.key_destroyed"), tid);
    EXPECT_FALSE(mapped("libthread_state.so"));
    // Joined; the kernel lets go of it a moment after.
    EXPECT_TRUE(wait_until([&] { return !std::filesystem::exists("/proc/self/task/" + tid); }));
    const auto next = load_on("c", "libcounter_v1.so");
    EXPECT_NE(next, tid);
}

}  // namespace
}  // namespace nonstop::test
