// Containment: a module that hangs or faults in one place cannot freeze the upgrader, stall
// another module or keep the runtime from stopping. Each test keeps a second module ticking on
// a timer throughout and checks that it went on ticking.
#include <atomic>
#include <thread>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

using namespace std::chrono_literals;

std::size_t ticks_of(const std::string& module) {
    std::size_t n = 0;
    for (const auto& e : events_of(module)) n += e.type == kTimerTick;
    return n;
}

std::size_t payloads_of(const std::string& module, const std::string& version) {
    std::size_t n = 0;
    for (const auto& e : events_of(module)) n += e.version == version && e.type != kTimerTick;
    return n;
}

class FaultTest : public RuntimeTest {
protected:
    void SetUp() override {
        RuntimeTest::SetUp();
        config.quiescence_timeout = 300ms;
        config.initialize_timeout = 300ms;
        config.state_timeout = 300ms;
        config.enable_timeout = 300ms;
        config.terminate_timeout = 300ms;
        config.stuck_after = 200ms;
        config.shutdown_timeout = 300ms;
        probe::close_gate("hang");
        probe::close_gate("g");
        probe::set("ticker.timer", "5");
    }
    void TearDown() override {
        // Lets every abandoned thread return, so that the runtime ends with nothing left.
        probe::open_gate("hang");
        probe::open_gate("g");
        RuntimeTest::TearDown();
    }
    // Another module with a timer: whatever happens to "m", it must go on ticking.
    void start_ticker() {
        ASSERT_TRUE(rt().load("ticker", "libcounter_v3.so").ok());
        ASSERT_TRUE(wait_until([] { return ticks_of("ticker") > 0; }));
    }
    void expect_ticker_ticks() {
        const auto before = ticks_of("ticker");
        EXPECT_TRUE(wait_until([&] { return ticks_of("ticker") > before + 2; }));
    }
    // Blocks m's handler on gate "g" and queues `queued` more messages behind it.
    void make_stuck(int queued) {
        ASSERT_TRUE(rt().send("m", Message{messages::kBlockOnGate, 1, {}, "g"}));
        ASSERT_TRUE(probe::wait_until_blocked("g"));
        send_numbered(rt(), "m", "queued", queued);
    }
};

// --- A new version that hangs in a hook is abandoned; the old one serves on ----------------

struct NewVersionHang {
    const char* hook;
};

class NewVersionHangTest : public FaultTest,
                           public ::testing::WithParamInterface<NewVersionHang> {};

TEST_P(NewVersionHangTest, AbortsWithinItsLimitAndTheOldVersionServesOn) {
    const std::string hook = GetParam().hook;
    start_ticker();
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    send_numbered(rt(), "m", "before", 3);
    const auto report = rt().replace("m", "libhang_" + hook + ".so");
    EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
    EXPECT_NE(report.reason.find("version hang-" + hook + " did not return from " + hook + "()"),
              std::string::npos)
        << report.reason;
    EXPECT_EQ(report.targets.at(0).abandoned_version, "hang-" + hook);
    EXPECT_EQ(rt().info("m")->version, "1");
    ASSERT_EQ(rt().abandoned().size(), 1u);
    EXPECT_EQ(rt().abandoned()[0].in, hook);
    expect_ticker_ticks();

    send_numbered(rt(), "m", "after", 3);
    EXPECT_TRUE(wait_until([] { return payloads_of("m", "1") == 6; }));
    // Once the hook returns, the abandoned instance ends and its library is unmapped.
    probe::open_gate("hang");
    EXPECT_TRUE(wait_until([&] { return rt().abandoned().empty(); }));
    EXPECT_TRUE(wait_until([&] { return !mapped("libhang_" + hook + ".so"); }));
}

INSTANTIATE_TEST_SUITE_P(Hooks, NewVersionHangTest,
                         ::testing::Values(NewVersionHang{"initialize"},
                                           NewVersionHang{"get_state"}, NewVersionHang{"enable"}),
                         [](const auto& info) { return std::string(info.param.hook); });

TEST_F(FaultTest, AGroupWhoseMemberHangsInEnableGoesBackWhole) {
    start_ticker();
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto report = rt().syn_replace({{"a", "libcounter_v2.so"}, {"m", "libhang_enable.so"}});
    EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
    EXPECT_EQ(rt().info("a")->version, "1");
    EXPECT_EQ(rt().info("m")->version, "1");
    send_numbered(rt(), "a", "x", 2);
    send_numbered(rt(), "m", "x", 2);
    EXPECT_TRUE(
        wait_until([] { return payloads_of("a", "1") == 2 && payloads_of("m", "1") == 2; }));
    EXPECT_EQ(payloads_of("a", "2"), 0u);  // the new a enabled, was held, and never served
}

// --- An old version that hangs ----------------------------------------------------------------

TEST_F(FaultTest, AnOldVersionHungInPutStateVotesNoAndKeepsEveryMessage) {
    start_ticker();
    ASSERT_TRUE(rt().load("m", "libhang_put_state.so").ok());
    send_numbered(rt(), "m", "before", 3);
    const auto report = rt().replace("m", "libcounter_v2.so");
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_NE(report.reason.find("did not return from put_state()"), std::string::npos)
        << report.reason;
    EXPECT_EQ(report.targets.at(0).vote, Vote::no);
    send_numbered(rt(), "m", "after", 3);
    expect_ticker_ticks();
    probe::open_gate("hang");  // put_state returns: the old version resumes on the buffer
    EXPECT_TRUE(wait_until([] { return payloads_of("m", "hang-put_state") == 6; }));
    EXPECT_EQ(rt().info("m")->version, "hang-put_state");
}

class OldVersionEndTest : public FaultTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(OldVersionEndTest, CommitsAndAbandonsTheOldInstance) {
    const std::string hook = GetParam();
    start_ticker();
    ASSERT_TRUE(rt().load("m", "libhang_" + hook + ".so").ok());
    const auto report = rt().replace("m", "libcounter_v2.so");
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(report.targets.at(0).abandoned_version, "hang-" + hook);
    EXPECT_EQ(report.targets.at(0).abandoned_in, hook);
    send_numbered(rt(), "m", "new", 3);
    EXPECT_TRUE(wait_until([] { return payloads_of("m", "2") == 3; }));
    expect_ticker_ticks();
    probe::open_gate("hang");
    EXPECT_TRUE(wait_until([&] { return !mapped("libhang_" + hook + ".so"); }));
}

INSTANTIATE_TEST_SUITE_P(Hooks, OldVersionEndTest, ::testing::Values("terminate", "destroy"),
                         [](const auto& info) { return std::string(info.param); });

// --- A handler that never returns -------------------------------------------------------------

TEST_F(FaultTest, TheWatchdogMarksAStuckModuleAndPublishesIt) {
    probe::set("watcher.subscribe", "upgrader stuck");
    ASSERT_TRUE(rt().load("watcher", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    make_stuck(0);
    ASSERT_TRUE(wait_until([&] { return rt().info("m")->stuck; }));
    const auto info = *rt().info("m");
    EXPECT_EQ(info.stuck_in, "handle");
    EXPECT_GE(info.stuck_for, config.stuck_after);
    ASSERT_TRUE(wait_until([] { return !events_of("watcher").empty(); }));
    EXPECT_EQ(events_of("watcher")[0].sender, "upgrader");
    EXPECT_EQ(events_of("watcher")[0].payload.rfind("m 1 handle ", 0), 0u);
    probe::open_gate("g");
    EXPECT_TRUE(wait_until([&] { return !rt().info("m")->stuck; }));
}

TEST_F(FaultTest, UnloadWithoutForceAbortsAndWithForceRemovesCountingTheDropped) {
    start_ticker();
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    make_stuck(5);
    EXPECT_EQ(rt().unload("m").outcome, Outcome::aborted);
    const auto report = rt().unload("m", true);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_TRUE(report.targets.at(0).forced);
    EXPECT_EQ(report.targets.at(0).dropped, 5u);
    EXPECT_FALSE(rt().info("m"));
    EXPECT_FALSE(rt().send("m", Message{}));
    ASSERT_EQ(rt().abandoned().size(), 1u);
    EXPECT_EQ(rt().abandoned()[0].in, "handle");
    expect_ticker_ticks();
    probe::open_gate("g");
    EXPECT_TRUE(wait_until([&] { return rt().abandoned().empty(); }));
    EXPECT_EQ(payloads_of("m", "1"), 1u);  // the stuck one; none of the five dropped ones
    EXPECT_TRUE(wait_until([] { return !mapped("libcounter_v1.so"); }));
}

TEST_F(FaultTest, ForcedReplaceStartsEmptyAndServesEveryUnservedMessageInOrder) {
    start_ticker();
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    make_stuck(5);
    EXPECT_EQ(rt().replace("m", "libcounter_v2.so").outcome, Outcome::aborted);
    const auto report = rt().replace("m", "libcounter_v2.so", true);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_TRUE(report.targets.at(0).forced);
    EXPECT_EQ(report.targets.at(0).abandoned_version, "1");
    send_numbered(rt(), "m", "after", 2);
    ASSERT_TRUE(wait_until([] { return payloads_of("m", "2") == 7; }));
    std::vector<std::string> order;
    for (const auto& e : events_of("m"))
        if (e.version == "2" && e.type != kTimerTick) order.push_back(e.payload);
    EXPECT_EQ(order, (std::vector<std::string>{"queued0", "queued1", "queued2", "queued3",
                                               "queued4", "after0", "after1"}));
    expect_ticker_ticks();
}

TEST_F(FaultTest, ShutdownEndsWithAStuckModuleAndNamesIt) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    // The runtime leaves the stuck thread, and what it uses, to the end of the process on
    // purpose: TSan reports that as a leak and races at exit, ASan reports ACE's exit-time
    // teardown of such a thread (an allocation freed with the wrong operator, inside ACE).
    GTEST_SKIP() << "a thread left to the end of the process is not run under the sanitizers";
#endif
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    make_stuck(2);
    ::testing::internal::CaptureStderr();
    RuntimeTest::TearDown();  // destroys the runtime while m's handler is still blocked
    const std::string said = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(said.find("shutdown abandoned module 'm' version 1 (still in handle()), 2 "
                        "message(s) unserved"),
              std::string::npos)
        << said;
    // The abandoned handler returns, records its message and its thread ends on its own.
    probe::open_gate("g");
    EXPECT_TRUE(wait_until([] { return events_of("m").size() == 1; }));
}

// --- Nothing one module does stalls another ------------------------------------------------

TEST_F(FaultTest, AFullModuleNeitherStallsTheTimersNorItsPublisher) {
    config.queue_capacity = 4;
    start_ticker();
    probe::set("m.subscribe", "pub tick");
    probe::set("m.timer", "1");
    probe::set("pub.publish", "tick");
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("pub", "libcounter_v1.so").ok());
    make_stuck(0);
    // Fill m's queue to the brim; its timer and pub's notifications now find it full.
    ASSERT_TRUE(wait_until([&] { return rt().info("m")->queue_depth >= 4; }));
    ASSERT_TRUE(rt().send("pub", Message{messages::kNotifyTicks, 1, {}, "50"}));
    ASSERT_TRUE(wait_until([] { return payloads_of("pub", "1") == 1; }));
    expect_ticker_ticks();
    EXPECT_TRUE(wait_until([&] { return rt().info("m")->ticks_coalesced > 0; }));
    EXPECT_GT(rt().info("m")->notifications_dropped, 0u);
}

// --- Faults inside handlers are seen ---------------------------------------------------------

TEST_F(FaultTest, AThrowingHandlerIsCountedWithItsTextAndNotAsHandled) {
    probe::open_gate("hang");
    ASSERT_TRUE(rt().load("m", "libhang_terminate.so").ok());
    send_numbered(rt(), "m", "ok", 2);
    ASSERT_TRUE(rt().send("m", Message{messages::kThrow, 1, {}, "cannot parse route 7"}));
    ASSERT_TRUE(wait_until([&] { return rt().info("m")->handler_errors == 1; }));
    const auto info = *rt().info("m");
    EXPECT_EQ(info.handled, 2u);
    EXPECT_EQ(info.last_failure, "handle(): cannot parse route 7");
    EXPECT_NE(info.last_failure_time, std::chrono::system_clock::time_point{});
}

TEST_F(FaultTest, AHandlerThatEndsItsThreadMarksTheModuleFailedNotTheProcess) {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    // ACE's own bookkeeping of a thread that ends outside its join path is what the
    // sanitizers report here: a lock-order inversion (TSan), and an allocation freed with the
    // wrong operator by ACE_Thread_Manager at exit (ASan).
    GTEST_SKIP() << "pthread_exit in module code is not run under the sanitizers";
#endif
    probe::open_gate("hang");
    start_ticker();
    ASSERT_TRUE(rt().load("m", "libhang_terminate.so").ok());
    ASSERT_TRUE(rt().send("m", Message{messages::kExitThread, 1, {}, {}}));
    ASSERT_TRUE(wait_until([&] { return rt().info("m")->status == ModuleStatus::failed; }));
    expect_ticker_ticks();
    const auto plain = rt().unload("m");
    EXPECT_EQ(plain.outcome, Outcome::aborted);
    EXPECT_NE(plain.reason.find("has failed"), std::string::npos) << plain.reason;
    EXPECT_TRUE(rt().unload("m", true).ok());
    EXPECT_TRUE(wait_until([] { return !mapped("libhang_terminate.so"); }));
}

// --- Bad requests get a clear answer -----------------------------------------------------------

TEST_F(FaultTest, ReservedNamesCannotBeLoaded) {
    for (const char* name : {"upgrader", "host", "timer"}) {
        const auto report = rt().load(name, "libcounter_v1.so");
        EXPECT_EQ(report.outcome, Outcome::rejected);
        EXPECT_EQ(report.reason, std::string("'") + name +
                                     "' is a name the framework sends and publishes under; a "
                                     "module cannot have it");
    }
}

TEST_F(FaultTest, AMessageLargerThanTheQueueIsRefusedNotThrown) {
    config.queue_capacity_bytes = 1024;
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    EXPECT_FALSE(rt().send("m", Message{messages::kRecord, 1, {}, std::string(2000, 'x')}));
    EXPECT_STREQ(last_send_error(),
                 "the message is larger than the receiving module's queue can hold");
    EXPECT_FALSE(rt().send("nobody", Message{}));
    EXPECT_STREQ(last_send_error(), "no module has that name");
    EXPECT_TRUE(rt().send("m", Message{messages::kRecord, 1, {}, std::string(1000, 'x')}));
    EXPECT_TRUE(wait_until([] { return payloads_of("m", "1") == 1; }));
}

TEST_F(FaultTest, EveryBlackoutUnderLoadLiesWithinItsTransaction) {
    config.queue_capacity = 1000;  // a backlog the old version drains well within the limit
    config.quiescence_timeout = 5s;
    ASSERT_TRUE(rt().load("m", "libcounter_v2.so").ok());
    std::atomic<bool> stop{false};
    std::thread producer([&] {
        auto port = rt().port("m");
        while (!stop) port->send(Message{messages::kRecord, 1, {}, "p"});
    });
    int measured = 0;
    for (int i = 0; i < 100; ++i) {
        const auto report = rt().replace("m", i % 2 ? "libcounter_v2.so" : "libcounter_v3.so");
        EXPECT_TRUE(report.ok()) << report.to_string();
        if (!report.ok()) break;
        const auto& t = report.targets.at(0);
        EXPECT_LE(t.blackout, report.duration) << report.to_string();
        EXPECT_GE(t.blackout.count(), 0);
        measured += t.blackout.count() > 0;
    }
    stop = true;
    producer.join();
    EXPECT_GT(measured, 0);
}

}  // namespace
}  // namespace nonstop::test
