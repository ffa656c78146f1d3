// Load, send, handle, unload; state transfer; libraries really unmapped; changed files reloaded.
#include <filesystem>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

using namespace std::chrono_literals;

TEST_F(RuntimeTest, LoadSendHandleUnloadUnmapsTheLibrary) {
    auto report = rt().load("counter", "libcounter_v1.so");
    ASSERT_EQ(report.outcome, Outcome::committed) << report.to_string();
    ASSERT_TRUE(mapped("libcounter_v1.so"));
    auto info = rt().info("counter");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->kind, "counter");
    EXPECT_EQ(info->version, "1");
    EXPECT_EQ(info->library, library("counter_v1"));

    send_numbered(rt(), "counter", "m", 10);
    ASSERT_TRUE(probe::wait_count(10));
    auto seen = events_of("counter");
    ASSERT_EQ(seen.size(), 10u);
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(seen[i].payload, "m" + std::to_string(i));
        EXPECT_EQ(seen[i].sender, "host");
        EXPECT_EQ(seen[i].version, "1");
    }
    // The module records a message before the framework counts it handled.
    EXPECT_TRUE(wait_until([&] { return rt().info("counter")->handled == 10u; }));
    EXPECT_EQ(rt().info("counter")->handled, 10u);
    EXPECT_EQ(rt().info("counter")->status, ModuleStatus::service);

    report = rt().unload("counter");
    ASSERT_EQ(report.outcome, Outcome::committed) << report.to_string();
    EXPECT_FALSE(rt().info("counter"));
    EXPECT_FALSE(rt().send("counter", Message{}));
    EXPECT_EQ(probe::get("counter.terminated"), "1");
    // The module's inline-function and template statics did not pin it in memory.
    EXPECT_FALSE(mapped("libcounter_v1.so"));
    EXPECT_TRUE(rt().libraries().empty());
}

TEST_F(RuntimeTest, ModuleToModuleSendSetsTheSender) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().send("a", Message{messages::kForward, 1, {}, "b"}));
    ASSERT_TRUE(probe::wait_count(2));
    auto at_b = events_of("b");
    ASSERT_EQ(at_b.size(), 1u);
    EXPECT_EQ(at_b[0].sender, "a");
    EXPECT_EQ(at_b[0].payload, "forwarded");
    EXPECT_EQ(probe::get("a.sent"), "1");
    // To an unknown name, send reports false.
    ASSERT_TRUE(rt().send("a", Message{messages::kForward, 1, {}, "nobody"}));
    ASSERT_TRUE(probe::wait_count(3));
    EXPECT_EQ(probe::get("a.sent"), "0");
}

TEST_F(RuntimeTest, DisabledModuleServesButCannotSend) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().disable("a").ok());
    EXPECT_FALSE(rt().info("a")->enabled);
    ASSERT_TRUE(rt().send("a", Message{messages::kForward, 1, {}, "b"}));
    ASSERT_TRUE(probe::wait_count(1));
    EXPECT_EQ(probe::get("a.sent"), "0");
    EXPECT_EQ(rt().info("a")->status, ModuleStatus::passive);
    ASSERT_TRUE(rt().enable("a").ok());
    ASSERT_TRUE(rt().send("a", Message{messages::kForward, 1, {}, "b"}));
    ASSERT_TRUE(probe::wait_count(3));
    EXPECT_EQ(probe::get("a.sent"), "1");
    EXPECT_EQ(events_of("b").size(), 1u);
}

TEST_F(RuntimeTest, StateTransfersForwardAndIncompatibleStateAborts) {
    ASSERT_TRUE(rt().load("counter", "libcounter_v1.so").ok());
    send_numbered(rt(), "counter", "a", 5);
    ASSERT_TRUE(probe::wait_count(5));

    auto report = rt().replace("counter", "libcounter_v2.so");
    ASSERT_EQ(report.outcome, Outcome::committed) << report.to_string();
    ASSERT_EQ(report.targets.size(), 1u);
    EXPECT_EQ(report.targets[0].old_version, "1");
    EXPECT_EQ(report.targets[0].new_version, "2");
    EXPECT_EQ(report.targets[0].vote, Vote::yes);
    EXPECT_EQ(report.targets[0].checkpoint_bytes, 1u);  // "5"
    EXPECT_EQ(rt().info("counter")->version, "2");
    EXPECT_FALSE(mapped("libcounter_v1.so"));

    send_numbered(rt(), "counter", "b", 5);
    ASSERT_TRUE(probe::wait_count(10));
    EXPECT_EQ(probe::get("counter.count"), "10");  // v2 continued v1's count
    EXPECT_EQ(events_of("counter").back().version, "2");

    // v1 cannot read v2's schema: the replacement aborts and v2 keeps serving.
    report = rt().replace("counter", "libcounter_v1.so");
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_NE(report.reason.find("failed to restore"), std::string::npos) << report.reason;
    EXPECT_NE(report.reason.find("cannot read state schema 2"), std::string::npos) << report.reason;
    EXPECT_EQ(rt().info("counter")->version, "2");
    EXPECT_FALSE(mapped("libcounter_v1.so"));
    send_numbered(rt(), "counter", "c", 5);
    ASSERT_TRUE(probe::wait_count(15));
    EXPECT_EQ(probe::get("counter.count"), "15");
    EXPECT_EQ(events_of("counter").back().version, "2");
    EXPECT_EQ(rt().history().size(), 3u);
}

TEST_F(RuntimeTest, SameLibraryIsSharedAndUnloadedWithItsLastInstance) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", library("counter_v1")).ok());
    auto libs = rt().libraries();
    ASSERT_EQ(libs.size(), 1u);
    EXPECT_EQ(libs[0].instances, 2);
    EXPECT_EQ(libs[0].version, "1");
    ASSERT_TRUE(rt().unload("a").ok());
    EXPECT_TRUE(mapped("libcounter_v1.so"));
    ASSERT_TRUE(rt().unload("b").ok());
    EXPECT_FALSE(mapped("libcounter_v1.so"));
}

TEST_F(RuntimeTest, FileChangedOnDiskLoadsTheNewCode) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("nonstop-test-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path path = dir / "libcounter.so";
    fs::copy_file(library("counter_v1"), path, fs::copy_options::overwrite_existing);
    ASSERT_TRUE(rt().load("a", path.string()).ok());
    EXPECT_EQ(rt().info("a")->version, "1");

    // Install the new build the way build tools do: a new file renamed over the old one.
    fs::copy_file(library("counter_v2"), dir / "libcounter.so.new",
                  fs::copy_options::overwrite_existing);
    fs::rename(dir / "libcounter.so.new", path);
    auto report = rt().load("b", path.string());
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(rt().info("b")->version, "2");
    EXPECT_EQ(rt().info("a")->version, "1");
    ASSERT_EQ(rt().libraries().size(), 2u);

    // And a replace of "a" by the same path picks up the new code too.
    ASSERT_TRUE(rt().replace("a", path.string()).ok());
    EXPECT_EQ(rt().info("a")->version, "2");
    ASSERT_TRUE(rt().unload("a").ok());
    ASSERT_TRUE(rt().unload("b").ok());
    EXPECT_FALSE(mapped("libcounter.so"));

    // Loaded again once nothing maps it: the copy kept for the new file, not the old one.
    ASSERT_TRUE(rt().load("a", path.string()).ok());
    EXPECT_EQ(rt().info("a")->version, "2");
    ASSERT_TRUE(rt().unload("a").ok());
    fs::copy_file(library("counter_v1"), dir / "libcounter.so.new",
                  fs::copy_options::overwrite_existing);
    fs::rename(dir / "libcounter.so.new", path);
    ASSERT_TRUE(rt().load("a", path.string()).ok());
    EXPECT_EQ(rt().info("a")->version, "1");
    ASSERT_TRUE(rt().unload("a").ok());
    EXPECT_FALSE(mapped("libcounter.so"));
    fs::remove_all(dir);
}

TEST_F(RuntimeTest, TimerTicksArriveThroughTheProxyAndSurviveReplacement) {
    probe::set("clock.timer", "2");
    ASSERT_TRUE(rt().load("clock", "libcounter_v2.so").ok());
    ASSERT_TRUE(probe::wait_count(3));
    for (auto& e : events_of("clock")) {
        EXPECT_EQ(e.type, kTimerTick);
        EXPECT_EQ(e.sender, "timer");
    }
    probe::set("clock.timer", "");
    ASSERT_TRUE(rt().replace("clock", "libcounter_v3.so").ok());
    const auto before = probe::count();
    ASSERT_TRUE(probe::wait_count(before + 3));
    EXPECT_EQ(events_of("clock").back().version, "3");
    ASSERT_TRUE(rt().unload("clock").ok());
}

TEST_F(RuntimeTest, RuntimeDestructorUnloadsEverything) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v2.so").ok());
    send_numbered(rt(), "a", "x", 100);
    TearDown();
    EXPECT_EQ(events_of("a").size(), 100u);  // served before removal
    EXPECT_FALSE(mapped("libcounter_v1.so"));
    EXPECT_FALSE(mapped("libcounter_v2.so"));
}

}  // namespace
}  // namespace nonstop::test
