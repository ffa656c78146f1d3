// Group transactions: all or nothing, concurrent slaves, the start barrier, the record.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

using namespace std::chrono_literals;

// Records every lifecycle step, and lets a test react to one as it happens.
class Trace {
public:
    explicit Trace(Runtime& rt) : rt_(rt) {
        token_ = rt.observe([this](const LifecycleEvent& e) {
            std::function<void(const LifecycleEvent&)> react;
            {
                std::lock_guard lock(mutex_);
                steps_.push_back(e.module + " " + e.version + " " + to_string(e.step));
                react = react_;
            }
            if (react) react(e);
        });
    }
    ~Trace() { rt_.unobserve(token_); }
    void on_step(std::function<void(const LifecycleEvent&)> react) {
        std::lock_guard lock(mutex_);
        react_ = std::move(react);
    }
    std::vector<std::string> steps() {
        std::lock_guard lock(mutex_);
        return steps_;
    }
    // Position of the first step equal to `step`; fails the test if absent.
    std::size_t at(const std::string& step) {
        auto s = steps();
        for (std::size_t i = 0; i < s.size(); ++i)
            if (s[i] == step) return i;
        ADD_FAILURE() << "no step '" << step << "'";
        return s.size();
    }
    void clear() {
        std::lock_guard lock(mutex_);
        steps_.clear();
    }

private:
    Runtime& rt_;
    std::uint64_t token_ = 0;
    std::mutex mutex_;
    std::vector<std::string> steps_;
    std::function<void(const LifecycleEvent&)> react_;
};

TEST_F(RuntimeTest, SynUpgradeLoadsAdditionsAfterTheVoteAndStartsEverythingTogether) {
    ASSERT_TRUE(rt().load("m1", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("m2", "libcounter_v1.so").ok());
    send_numbered(rt(), "m1", "a", 3);
    send_numbered(rt(), "m2", "a", 4);
    ASSERT_TRUE(probe::wait_count(7));
    Trace trace(rt());
    auto report = rt().syn_upgrade(
        {{"m1", "libcounter_v2.so"}, {"m2", "libcounter_v2.so"}, {"m3", "libcounter_v3.so"}});
    ASSERT_TRUE(report.ok()) << report.to_string();
    ASSERT_EQ(report.targets.size(), 3u);
    EXPECT_EQ(report.targets[0].action, Action::replace);
    EXPECT_EQ(report.targets[2].action, Action::load);

    // Figure 4.12: M3 is created only once M1 and M2 are prepared ...
    EXPECT_LT(trace.at("m1 1 prepared"), trace.at("m3 3 init"));
    EXPECT_LT(trace.at("m2 1 prepared"), trace.at("m3 3 init"));
    // ... and nobody starts before everybody is committed and waiting.
    const std::size_t last_ready =
        std::max({trace.at("m1 2 hot swapped"), trace.at("m2 2 hot swapped"),
                  trace.at("m3 3 wait to start")});
    for (auto start : {"m1 2 start", "m2 2 start", "m3 3 start"})
        EXPECT_GT(trace.at(start), last_ready);

    send_numbered(rt(), "m1", "b", 1);
    send_numbered(rt(), "m2", "b", 1);
    send_numbered(rt(), "m3", "b", 1);
    ASSERT_TRUE(probe::wait_count(10));
    EXPECT_EQ(probe::get("m1.count"), "4");  // state continued in the replaced ones
    EXPECT_EQ(probe::get("m2.count"), "5");
    EXPECT_EQ(probe::get("m3.count"), "1");
}

// Loads m0..m(n-1) at version 2, each with its handler held on gate "g<name>", so that none
// can reach quiescence until the test opens its gate; `changes` replaces them all with v3.
void load_busy_targets(Runtime& rt, int n, std::vector<Change>& changes) {
    for (int i = 0; i < n; ++i) {
        const std::string name = "m" + std::to_string(i);
        ASSERT_TRUE(rt.load(name, "libcounter_v2.so").ok());
        probe::close_gate("g" + name);
        ASSERT_TRUE(rt.send(name, Message{messages::kBlockOnGate, 1, {}, "g" + name}));
        ASSERT_TRUE(probe::wait_until_blocked("g" + name));
        changes.push_back({name, "libcounter_v3.so"});
    }
}

TEST_F(RuntimeTest, ConcurrentSlavesAllPrepareBeforeAnyFinishesVoting) {
    constexpr int kTargets = 4;
    std::vector<Change> changes;
    ASSERT_NO_FATAL_FAILURE(load_busy_targets(rt(), kTargets, changes));
    Trace trace(rt());
    // No drain can finish until every slave has begun its prepare step.
    std::atomic<int> disabled{0};
    trace.on_step([&](const LifecycleEvent& e) {
        if (e.step == Step::disable && ++disabled == kTargets)
            for (int i = 0; i < kTargets; ++i) probe::open_gate("gm" + std::to_string(i));
    });
    auto report = rt().syn_replace(changes, Mode::concurrent);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(report.mode, Mode::concurrent);
    std::size_t last_disable = 0, first_prepared = SIZE_MAX;
    for (int i = 0; i < kTargets; ++i) {
        const std::string name = "m" + std::to_string(i);
        last_disable = std::max(last_disable, trace.at(name + " 2 disable"));
        first_prepared = std::min(first_prepared, trace.at(name + " 2 prepared"));
    }
    EXPECT_LT(last_disable, first_prepared);
}

TEST_F(RuntimeTest, SequentialModePreparesOneModuleAtATime) {
    constexpr int kTargets = 3;
    std::vector<Change> changes;
    ASSERT_NO_FATAL_FAILURE(load_busy_targets(rt(), kTargets, changes));
    Trace trace(rt());
    trace.on_step([&](const LifecycleEvent& e) {
        if (e.step == Step::disable) probe::open_gate("g" + e.module);
    });
    auto report = rt().syn_replace(changes, Mode::sequential);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(report.mode, Mode::sequential);
    for (int i = 0; i + 1 < kTargets; ++i) {
        const std::string name = "m" + std::to_string(i), next = "m" + std::to_string(i + 1);
        EXPECT_LT(trace.at(name + " 2 prepared"), trace.at(next + " 2 disable"));
    }
}

// One bad member of a group: the whole group ends on its old versions, nothing lost.
struct GroupFailure {
    const char* title;
    const char* a_start;   // library "a" runs before
    const char* a_target;  // library "a" is replaced by
    const char* reason;
    Outcome outcome;
};

class GroupFailureTest : public RuntimeTest, public ::testing::WithParamInterface<GroupFailure> {};

TEST_P(GroupFailureTest, AbortsTheWholeGroup) {
    const auto& c = GetParam();
    config.quiescence_timeout = 300ms;
    ASSERT_TRUE(rt().load("a", c.a_start).ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    const std::string a_version = rt().info("a")->version;
    if (std::string(c.title) == "timeout") {
        probe::close_gate("ga");
        ASSERT_TRUE(rt().send("a", Message{messages::kBlockOnGate, 1, {}, "ga"}));
        ASSERT_TRUE(probe::wait_until_blocked("ga"));
    }
    send_numbered(rt(), "a", "before", 3);
    send_numbered(rt(), "b", "before", 3);
    std::vector<Change> changes = {{"b", "libcounter_v2.so"}, {"a", c.a_target}};
    Trace trace(rt());
    for (auto mode : {Mode::concurrent, Mode::sequential}) {
        auto report = rt().syn_replace(changes, mode);
        if (std::string(c.title) == "timeout") {
            EXPECT_LT(trace.at("a 1 timeout"), trace.at("a 1 abort"));
        }
        EXPECT_EQ(report.outcome, c.outcome) << report.to_string();
        EXPECT_NE(report.reason.find(c.reason), std::string::npos) << report.reason;
        EXPECT_EQ(rt().info("a")->version, a_version);
        EXPECT_EQ(rt().info("b")->version, "1");
        EXPECT_FALSE(mapped("libcounter_v2.so"));
    }
    send_numbered(rt(), "a", "after", 3);
    send_numbered(rt(), "b", "after", 3);
    probe::open_gate("ga");
    const bool blocked = std::string(c.title) == "timeout";
    ASSERT_TRUE(probe::wait_count(12 + (blocked ? 1 : 0)));
    for (const char* name : {"a", "b"}) {
        auto seen = events_of(name);
        if (blocked && std::string(name) == "a") seen.erase(seen.begin());
        ASSERT_EQ(seen.size(), 6u) << name;
        for (int i = 0; i < 6; ++i)
            EXPECT_EQ(seen[i].payload, (i < 3 ? "before" : "after") + std::to_string(i % 3))
                << name;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Upgrader, GroupFailureTest,
    ::testing::Values(
        GroupFailure{"timeout", "libcounter_v1.so", "libcounter_v2.so",
                     "module 'a' did not reach quiescence within 0.300 s", Outcome::aborted},
        GroupFailure{"put_state", "libfaulty_put_state.so", "libcounter_v2.so",
                     "module 'a' failed to checkpoint its state: state is corrupt",
                     Outcome::aborted},
        GroupFailure{"get_state", "libcounter_v1.so", "libfaulty_get_state.so",
                     "failed to restore the state of version 1: state cannot be parsed",
                     Outcome::aborted},
        GroupFailure{"load", "libcounter_v1.so", "libmissing.so",
                     "library file 'libmissing.so' does not exist", Outcome::aborted}),
    [](const auto& info) { return std::string(info.param.title); });

TEST_F(RuntimeTest, GroupValidationRejectsUnknownNamesAndExistingAdditions) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    auto report = rt().syn_replace({{"a", "libcounter_v2.so"}, {"ghost", "libcounter_v2.so"}});
    EXPECT_EQ(report.outcome, Outcome::rejected);
    EXPECT_EQ(report.reason, "no module is named 'ghost'");
    report = rt().syn_upgrade({{"a", "libcounter_v2.so"}}, {{"a", "libcounter_v3.so"}},
                              Mode::concurrent);
    EXPECT_EQ(report.outcome, Outcome::rejected);
    EXPECT_EQ(report.reason, "module 'a' is named twice");
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    report = rt().syn_upgrade({{"a", "libcounter_v2.so"}}, {{"b", "libcounter_v3.so"}},
                              Mode::concurrent);
    EXPECT_EQ(report.outcome, Outcome::rejected);
    EXPECT_EQ(report.reason, "a module named 'b' already exists");
    report = rt().syn_load({{"c", "libcounter_v1.so"}, {"c", "libcounter_v2.so"}});
    EXPECT_EQ(report.outcome, Outcome::rejected);
    EXPECT_FALSE(rt().info("c"));
    EXPECT_EQ(rt().info("a")->version, "1");
    EXPECT_FALSE(mapped("libcounter_v2.so"));
    EXPECT_FALSE(mapped("libcounter_v3.so"));
}

// A single replacement: the old version's thread starts the new one itself once its checkpoint
// is taken. Every step is traced once, in the documented order, and nothing sent meanwhile is
// lost or reordered.
TEST_F(RuntimeTest, ASingleReplacementHandsOverFromTheOldThreadInOrder) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    Trace trace(rt());
    std::mutex mutex;
    std::map<std::string, std::thread::id> thread_of;  // which thread traced each step
    const auto token = rt().observe([&](const LifecycleEvent& e) {
        std::lock_guard lock(mutex);
        thread_of[e.version + " " + to_string(e.step)] = std::this_thread::get_id();
    });
    std::atomic<bool> stop{false};
    std::atomic<int> sent{0};
    std::thread sender([&] {
        const auto port = rt().port("a");
        for (int i = 0; !stop || i < 50; ++i) {
            ASSERT_TRUE(port->send(Message{1, 1, "test", "n" + std::to_string(i)}));
            sent = i + 1;
        }
    });
    ASSERT_TRUE(wait_until([&] { return sent >= 50; }));
    const auto report = rt().replace("a", "libcounter_v2.so");
    stop = true;
    sender.join();
    rt().unobserve(token);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(report.targets.at(0).vote, Vote::yes);
    {
        // The old version's thread took the steps from its checkpoint to the new one's start;
        // the caller's thread (the upgrader's) did not.
        std::lock_guard lock(mutex);
        const auto old_thread = thread_of["1 get TERM message"];
        EXPECT_NE(old_thread, std::this_thread::get_id());
        for (const char* step : {"1 put state", "1 commit", "2 hot swapped", "2 start"})
            EXPECT_EQ(thread_of[step], old_thread) << step;
    }
    const std::vector<std::string> order = {
        "a 1 disable",   "a 1 will term", "a 1 get TERM message", "a 1 reach quiescent state",
        "a 1 put state", "a 1 prepared",  "a 1 commit",           "a 2 hot swapped",
        "a 2 start",     "a 2 get state"};
    const auto steps = trace.steps();
    std::size_t last = 0;
    for (const auto& step : order) {
        EXPECT_EQ(std::count(steps.begin(), steps.end(), step), 1) << step;
        const std::size_t at = trace.at(step);
        EXPECT_GE(at, last) << step << " comes too early";
        last = at;
    }
    // Every message, in order, served by v1 up to some point and by v2 after it.
    ASSERT_TRUE(
        wait_until([&] { return events_of("a").size() == static_cast<std::size_t>(sent); }));
    const auto events = events_of("a");
    bool second = false;
    for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].payload, "n" + std::to_string(i));
        if (events[i].version == "2") second = true;
        EXPECT_EQ(events[i].version, second ? "2" : "1") << "message " << i;
    }
    EXPECT_EQ(rt().info("a")->version, "2");
}

TEST_F(RuntimeTest, UpgraderPublishesEachStateOfItsMachine) {
    probe::set("watcher.subscribe", "upgrader transaction");
    ASSERT_TRUE(rt().load("watcher", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    const auto committed = rt().replace("a", "libcounter_v2.so");
    const auto aborted = rt().replace("a", "libcounter_v1.so");  // v1 cannot read v2's state
    ASSERT_TRUE(committed.ok());
    ASSERT_EQ(aborted.outcome, Outcome::aborted);
    const auto states_of = [](std::uint64_t id, std::size_t expected) {
        std::vector<std::string> states;
        EXPECT_TRUE(probe::wait_count(expected));
        const std::string prefix = std::to_string(id) + " ";
        for (auto& e : events_of("watcher"))
            if (e.payload.rfind(prefix, 0) == 0)
                states.push_back(e.payload.substr(
                    prefix.size(), e.payload.find(' ', prefix.size()) - prefix.size()));
        return states;
    };
    // load a (6 states) + replace (6) + aborted replace (5), after the end of the watcher's own
    // load: "commit", "start" (announced once it has started, so subscribed) and "committed".
    EXPECT_EQ(states_of(committed.id, 3 + 6 + 6 + 5),
              (std::vector<std::string>{"validation", "preparation", "voting", "commit", "start",
                                        "committed"}));
    EXPECT_EQ(
        states_of(aborted.id, 3 + 6 + 6 + 5),
        (std::vector<std::string>{"validation", "preparation", "voting", "abort", "aborted"}));
}

// A module that asks to replace or remove itself from its own handler would wait for its own
// quiescence forever; the upgrader refuses instead.
TEST(SelfUpgrade, IsRefusedFromTheModulesOwnThread) {
    probe::clear();
    auto& rt = Runtime::instance();
    rt.set_module_path({NONSTOP_TEST_MODULE_DIR});
    ASSERT_TRUE(rt.load("selfish", "libcounter_v1.so").ok());
    ASSERT_TRUE(
        rt.send("selfish", Message{messages::kUpgradeSelf, 1, {}, "replace libcounter_v2.so"}));
    ASSERT_TRUE(probe::wait_count(1));
    EXPECT_EQ(probe::get("selfish.self"),
              "module 'selfish' cannot be replaced from its own thread (it would wait for itself)");
    ASSERT_TRUE(rt.send("selfish", Message{messages::kUpgradeSelf, 1, {}, "unload"}));
    ASSERT_TRUE(probe::wait_count(2));
    EXPECT_EQ(probe::get("selfish.self"),
              "module 'selfish' cannot be removed from its own thread (it would wait for itself)");
    EXPECT_EQ(rt.info("selfish")->version, "1");
    // From any other thread the same commands work.
    EXPECT_TRUE(rt.replace("selfish", "libcounter_v2.so").ok());
    EXPECT_TRUE(rt.unload("selfish").ok());
}

TEST_F(RuntimeTest, SendingToAnUnloadedModuleReportsTheUnknownName) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().unload("b").ok());
    ASSERT_TRUE(rt().send("a", Message{messages::kForward, 1, {}, "b"}));
    ASSERT_TRUE(probe::wait_count(1));
    EXPECT_EQ(probe::get("a.sent"), "0");
    EXPECT_EQ(rt().info("a")->status, ModuleStatus::service);
}

TEST_F(RuntimeTest, ReportsAreKeptAndTransactionsWaitTheirTurn) {
    config.history_size = 3;
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    probe::close_gate("slow");
    ASSERT_TRUE(rt().send("a", Message{messages::kBlockOnGate, 1, {}, "slow"}));
    ASSERT_TRUE(probe::wait_until_blocked("slow"));
    // A replace that must wait for the drain holds the upgrader; a second command queues.
    std::thread first([&] { EXPECT_TRUE(rt().replace("a", "libcounter_v1.so").ok()); });
    while (!rt().info("a")->in_transaction) std::this_thread::yield();
    std::thread opener([&] {
        // Open the gate only once the second command is queued behind the first.
        while (rt().queued() == 0) std::this_thread::yield();
        probe::open_gate("slow");
    });
    auto second = rt().enable("a");
    first.join();
    opener.join();
    EXPECT_TRUE(second.ok());
    auto history = rt().history();
    ASSERT_EQ(history.size(), 3u);
    EXPECT_EQ(history[1].command, "replace a libcounter_v1.so");
    EXPECT_EQ(history[2].command, "enable a");
    EXPECT_GT(history[2].waited.count(), 0);
    EXPECT_NE(history[2].to_string().find("for an earlier transaction"), std::string::npos);
    EXPECT_EQ(rt().history(1).size(), 1u);
}

}  // namespace
}  // namespace nonstop::test
