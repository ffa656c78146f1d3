// Probation, the health rules, audits and their escalation ladder, and rollback by command:
// every rollback is a transaction of the two-phase commit, and no accepted message is lost.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <nonstop/error.hpp>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

// Collects every release transition the runtime reports.
class Transitions {
public:
    explicit Transitions(Runtime& rt) : rt_(rt) {
        token_ = rt.observe_releases([this](const ReleaseTransition& t) {
            std::lock_guard lock(mutex_);
            seen_.push_back(t);
        });
    }
    ~Transitions() { rt_.unobserve(token_); }
    std::vector<ReleaseTransition> seen() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    // Waits for a transition of `transaction` into `state`; returns it.
    std::optional<ReleaseTransition> wait(std::uint64_t transaction, ReleaseState state) const {
        std::optional<ReleaseTransition> found;
        wait_until([&] {
            for (const auto& t : seen())
                if (t.transaction == transaction && t.state == state) found = t;
            return found.has_value();
        });
        return found;
    }

private:
    Runtime& rt_;
    std::uint64_t token_ = 0;
    mutable std::mutex mutex_;
    std::vector<ReleaseTransition> seen_;
};

// One sender numbering its messages to module "c" until stopped.
class Producer {
public:
    explicit Producer(Runtime& rt) {
        thread_ = std::thread([this, &rt] {
            while (!stop_) {
                if (!rt.send("c", Message{messages::kRecord, 1, "p", std::to_string(sent_)}))
                    refused_ = true;
                ++sent_;
                if (sent_ % 64 == 0) std::this_thread::yield();
            }
        });
    }
    ~Producer() { stop(); }
    long stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return sent_;
    }
    bool refused() const { return refused_; }

private:
    std::atomic<bool> stop_{false}, refused_{false};
    std::atomic<long> sent_{0};
    std::thread thread_;
};

// Every message 0..sent-1 of producer "p" was served exactly once, in order, by some version.
void expect_complete(long sent) {
    ASSERT_TRUE(wait_until([&] {
        long n = 0;
        for (const auto& e : events_of("c")) n += e.sender == "p";
        return n >= sent;
    }));
    std::vector<long> seqs;
    for (const auto& e : events_of("c"))
        if (e.sender == "p") seqs.push_back(std::stol(e.payload));
    ASSERT_EQ(static_cast<long>(seqs.size()), sent);
    for (long i = 0; i < sent; ++i) ASSERT_EQ(seqs[i], i) << "at position " << i;
}

const TransactionReport* last_rollback(const std::vector<TransactionReport>& history) {
    for (auto r = history.rbegin(); r != history.rend(); ++r)
        if (r->undoes != 0) return &*r;
    return nullptr;
}

class ProbationTest : public RuntimeTest {
protected:
    void SetUp() override {
        RuntimeTest::SetUp();
        config.probation = std::chrono::seconds(60);
    }
    // Replaces "c" (version 2, loaded first) by `library` under traffic, waits until a health
    // rule rolls it back, and checks that nothing was lost; returns the rollback's report.
    TransactionReport rolled_back_under_traffic(const std::string& library,
                                                const std::function<void()>& provoke = {}) {
        EXPECT_TRUE(rt().load("c", "libcounter_v2.so").ok());
        Transitions transitions(rt());
        Producer producer(rt());
        EXPECT_TRUE(wait_until([&] { return rt().info("c")->handled > 100; }));
        const auto report = rt().replace("c", library);
        EXPECT_TRUE(report.ok()) << report.to_string();
        EXPECT_GT(report.probation.count(), 0);
        EXPECT_TRUE(transitions.wait(report.id, ReleaseState::provisional));
        if (provoke) provoke();
        const auto back = transitions.wait(report.id, ReleaseState::rolled_back);
        const long sent = producer.stop();
        EXPECT_FALSE(producer.refused());
        EXPECT_TRUE(back.has_value());
        expect_complete(sent);
        EXPECT_EQ(rt().info("c")->version, "2");
        EXPECT_FALSE(rt().info("c")->provisional);
        const auto history = rt().history();
        const auto* rollback = last_rollback(history);
        EXPECT_NE(rollback, nullptr);
        if (rollback == nullptr) return {};
        EXPECT_EQ(rollback->undoes, report.id);
        EXPECT_EQ(back->rule, rollback->rule);
        EXPECT_EQ(back->rollback, rollback->id);
        std::cout << "[ info ] " << rollback->to_string();
        return *rollback;
    }
};

TEST_F(ProbationTest, AVersionThatThrowsIsRolledBackByTheFailuresRuleWithNothingLost) {
    const auto rollback = rolled_back_under_traffic("libcounter_throws.so");
    EXPECT_EQ(rollback.outcome, Outcome::committed);
    EXPECT_EQ(rollback.rule, "failures");
    EXPECT_NE(rollback.evidence.find("fails every message"), std::string::npos)
        << rollback.evidence;
    const auto info = *rt().info("c");
    EXPECT_GE(info.failed, 10u);
    // A failed message is not counted handled; every served one is one or the other.
    long sent_by_p = 0;
    for (const auto& e : events_of("c")) sent_by_p += e.sender == "p";
    EXPECT_EQ(info.handled + info.failed, static_cast<std::uint64_t>(sent_by_p));
    // The state went back with the rollback: the count goes on from every message served.
    EXPECT_EQ(probe::get("c.count"), std::to_string(sent_by_p));
}

TEST_F(ProbationTest, AStuckVersionIsGivenUpOnAndTheOldOneRestartsFromItsCheckpoint) {
    config.stuck_after = std::chrono::milliseconds(200);
    config.quiescence_timeout = std::chrono::milliseconds(300);
    probe::close_gate("g");
    const auto rollback = rolled_back_under_traffic("libcounter_v3.so", [&] {
        ASSERT_TRUE(rt().send("c", Message{messages::kBlockOnGate, 1, "host", "g"}));
    });
    probe::open_gate("g");
    EXPECT_TRUE(wait_until([&] { return rt().abandoned().empty(); }));
    EXPECT_EQ(rollback.outcome, Outcome::committed) << rollback.to_string();
    EXPECT_EQ(rollback.rule, "stuck");
    EXPECT_NE(rollback.evidence.find("inside handle()"), std::string::npos) << rollback.evidence;
    ASSERT_EQ(rollback.targets.size(), 1u);
    EXPECT_EQ(rollback.targets[0].abandoned_version, "3");
    EXPECT_NE(rollback.targets[0].state_transfer.find("commit-time"), std::string::npos);
}

TEST_F(ProbationTest, AVersionThatServesNothingIsRolledBackByTheIdleRule) {
    config.stuck_after = std::chrono::seconds(600);  // not stuck yet: idle speaks first
    config.probation_idle_limit = std::chrono::milliseconds(300);
    config.quiescence_timeout = std::chrono::milliseconds(300);
    probe::close_gate("g");
    const auto rollback = rolled_back_under_traffic("libcounter_v3.so", [&] {
        ASSERT_TRUE(rt().send("c", Message{messages::kBlockOnGate, 1, "host", "g"}));
    });
    probe::open_gate("g");
    EXPECT_TRUE(wait_until([&] { return rt().abandoned().empty(); }));
    EXPECT_EQ(rollback.rule, "idle");
    EXPECT_NE(rollback.evidence.find("served none"), std::string::npos) << rollback.evidence;
}

TEST_F(ProbationTest, AFailingAuditRollsBackAProvisionalVersion) {
    config.audit_period = std::chrono::milliseconds(50);
    const auto rollback = rolled_back_under_traffic("libcounter_audit_fails.so");
    EXPECT_EQ(rollback.rule, "audit");
    EXPECT_NE(rollback.evidence.find("does not match its checksum"), std::string::npos);
    EXPECT_TRUE(wait_until([&] {
        const auto info = rt().info("c");
        return info->audited && info->audit_healthy;
    }));
}

TEST_F(ProbationTest, AcceptEndsProbationAndReleasesTheOldLibrary) {
    Transitions transitions(rt());
    ASSERT_TRUE(rt().load("c", "libcounter_v2.so").ok());
    const auto report = rt().replace("c", "libcounter_v3.so");
    ASSERT_TRUE(report.ok());
    auto info = *rt().info("c");
    EXPECT_TRUE(info.provisional);
    EXPECT_EQ(info.provisional_transaction, report.id);
    EXPECT_GT(info.probation_left.count(), 0);
    auto loaded = [&](const std::string& version) {
        for (const auto& l : rt().libraries())
            if (l.version == version) return true;
        return false;
    };
    EXPECT_TRUE(loaded("2"));  // held for a rollback
    // A provisional module changes again only once accepted or rolled back.
    const auto again = rt().replace("c", "libcounter_v2.so");
    EXPECT_EQ(again.outcome, Outcome::rejected);
    EXPECT_NE(again.reason.find("is provisional"), std::string::npos) << again.reason;
    EXPECT_EQ(rt().accept(report.id), std::vector<std::uint64_t>{report.id});
    const auto t = transitions.wait(report.id, ReleaseState::permanent);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->rule, "accepted");
    ASSERT_EQ(t->modules.size(), 1u);
    EXPECT_EQ(t->modules[0].old_version, "2");
    EXPECT_EQ(t->modules[0].new_version, "3");
    EXPECT_FALSE(rt().info("c")->provisional);
    EXPECT_FALSE(loaded("2"));
    EXPECT_THROW(rt().accept(), Error);  // nothing provisional any more
}

TEST_F(ProbationTest, AProbationThatEndsCleanMakesTheReleasePermanent) {
    config.probation = std::chrono::milliseconds(200);
    Transitions transitions(rt());
    ASSERT_TRUE(rt().load("c", "libcounter_v2.so").ok());
    const auto report = rt().replace("c", "libcounter_v3.so");
    ASSERT_TRUE(report.ok());
    send_numbered(rt(), "c", "m", 50);
    const auto t = transitions.wait(report.id, ReleaseState::permanent);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->rule, "expired");
    EXPECT_EQ(rt().info("c")->version, "3");
    EXPECT_FALSE(rt().info("c")->provisional);
}

TEST_F(ProbationTest, WithoutProbationEveryCommitIsPermanentAtOnce) {
    config.probation = std::chrono::milliseconds(0);
    Transitions transitions(rt());
    ASSERT_TRUE(rt().load("c", "libcounter_v2.so").ok());
    const auto report = rt().replace("c", "libcounter_v3.so");
    ASSERT_TRUE(report.ok());
    const auto t = transitions.wait(report.id, ReleaseState::permanent);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->rule, "no probation");
    EXPECT_EQ(transitions.seen().size(), 1u);
}

TEST_F(ProbationTest, AProbationGivenForOneTransactionLeavesTheRuntimeSettingAlone) {
    config.probation = std::chrono::milliseconds(0);
    Transitions transitions(rt());
    ASSERT_TRUE(rt().load("c", "libcounter_v1.so").ok());
    TransactionOptions options;
    options.probation = std::chrono::milliseconds(200);
    const auto provisional = rt().replace("c", "libcounter_v2.so", options);
    ASSERT_TRUE(provisional.ok()) << provisional.to_string();
    EXPECT_EQ(provisional.probation, std::chrono::milliseconds(200));
    EXPECT_TRUE(rt().info("c")->provisional);
    const auto t = transitions.wait(provisional.id, ReleaseState::permanent);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->rule, "expired");
    EXPECT_EQ(rt().probation(), std::chrono::milliseconds(0));
    // The next command without the option: the runtime's setting (off), permanent at once.
    const auto next = rt().replace("c", "libcounter_v3.so");
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next.probation, std::chrono::milliseconds(0));
    EXPECT_FALSE(rt().info("c")->provisional);
    options.probation = std::chrono::milliseconds(-1);
    const auto negative = rt().replace("c", "libcounter_v2.so", options);
    EXPECT_EQ(negative.outcome, Outcome::rejected);
    EXPECT_EQ(negative.reason, "the probation period cannot be negative");
}

TEST_F(ProbationTest, AVersionWhoseEnableHangsIsNeverCommitted) {
    config.enable_timeout = std::chrono::milliseconds(200);
    config.state_timeout = std::chrono::milliseconds(200);
    probe::close_gate("hang");
    Transitions transitions(rt());
    ASSERT_TRUE(rt().load("c", "libcounter_v2.so").ok());
    send_numbered(rt(), "c", "before", 10);
    const auto report = rt().replace("c", "libhang_enable.so");
    EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
    EXPECT_NE(report.reason.find("enable()"), std::string::npos) << report.reason;
    send_numbered(rt(), "c", "after", 10);
    EXPECT_TRUE(wait_until([&] { return probe::get("c.count") == "20"; }));
    EXPECT_EQ(rt().info("c")->version, "2");
    EXPECT_FALSE(rt().info("c")->provisional);
    EXPECT_TRUE(transitions.seen().empty());
    probe::open_gate("hang");
    // The abandoned instance ends once its enable() returns: not after the process exits.
    EXPECT_TRUE(wait_until([&] { return rt().abandoned().empty(); }));
}

TEST_F(ProbationTest, OneMemberTrippingRollsTheWholeGroupBack) {
    Transitions transitions(rt());
    ASSERT_TRUE(rt().load("a", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v2.so").ok());
    const auto up = rt().syn_replace({{"a", "libcounter_throws.so"}, {"b", "libcounter_v3.so"}});
    ASSERT_TRUE(up.ok()) << up.to_string();
    EXPECT_TRUE(rt().info("b")->provisional);
    send_numbered(rt(), "a", "m", 20);
    const auto back = transitions.wait(up.id, ReleaseState::rolled_back);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->rule, "failures");
    EXPECT_EQ(back->modules.size(), 2u);
    EXPECT_EQ(rt().info("a")->version, "2");
    EXPECT_EQ(rt().info("b")->version, "2");
    const auto rollback = rt().history().back();
    EXPECT_EQ(rollback.undoes, up.id);
    EXPECT_EQ(rollback.targets.size(), 2u);
    EXPECT_TRUE(rollback.ok()) << rollback.to_string();
}

// A release's change of standing is told once the command that made it is in the history: an
// observer that looks there finds the report it is told about.
TEST_F(ProbationTest, AnObserverToldOfATransitionFindsItsCommandInTheHistory) {
    std::mutex mutex;
    std::vector<std::string> found;  // per transition: the command the history ends with
    const auto token = rt().observe_releases([&](const ReleaseTransition& t) {
        const auto history = rt().history(1);
        std::lock_guard lock(mutex);
        found.push_back(
            to_string(t.state) + std::string(" ") +
            (history.empty() ? "none" : std::to_string(history.back().id)) + " " +
            std::to_string(t.state == ReleaseState::rolled_back ? t.rollback : t.transaction));
    });
    ASSERT_TRUE(rt().load("a", "libcounter_v2.so").ok());
    const auto up = rt().replace("a", "libcounter_v3.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    const auto back = rt().rollback("a");
    ASSERT_TRUE(back.ok()) << back.to_string();
    rt().unobserve(token);
    std::lock_guard lock(mutex);
    const std::string u = std::to_string(up.id), b = std::to_string(back.id);
    EXPECT_EQ(found, (std::vector<std::string>{"provisional " + u + " " + u,
                                               "rolled back " + b + " " + b}));
}

class RollbackTest : public RuntimeTest {};

// After probation the old library is loaded again from its recorded path, and only if that
// file still holds the recorded content.
TEST_F(RollbackTest, IsRejectedWhenTheOldLibraryFileChangedSinceTheCommit) {
    char dir[] = "/tmp/nonstop-rollback-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string path = std::string(dir) + "/libold.so";
    auto copy = [&](const std::string& from) {
        std::filesystem::copy_file(library(from), path,
                                   std::filesystem::copy_options::overwrite_existing);
    };
    copy("counter_v1");
    ASSERT_TRUE(rt().load("c", path).ok());
    ASSERT_TRUE(rt().replace("c", "libcounter_down.so").ok());
    copy("counter_v3");
    const auto back = rt().rollback("c");
    EXPECT_EQ(back.outcome, Outcome::rejected);
    EXPECT_NE(back.reason.find("no longer holds version 1"), std::string::npos) << back.reason;
    EXPECT_EQ(rt().info("c")->version, "2-down");
    copy("counter_v1");  // the same content again: the rollback goes through
    EXPECT_TRUE(rt().rollback("c").ok());
    EXPECT_EQ(rt().info("c")->version, "1");
    std::filesystem::remove_all(dir);
}

TEST_F(RollbackTest, ADownConversionTakesTheStateBackAfterProbation) {
    ASSERT_TRUE(rt().load("c", "libcounter_v1.so").ok());
    send_numbered(rt(), "c", "a", 5);
    const auto up = rt().replace("c", "libcounter_down.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    send_numbered(rt(), "c", "b", 5);
    for (const auto& l : rt().libraries()) EXPECT_NE(l.version, "1");  // unloaded: permanent
    const auto back = rt().rollback("c");
    ASSERT_TRUE(back.ok()) << back.to_string();
    EXPECT_EQ(back.undoes, up.id);
    EXPECT_EQ(back.rule, "operator");
    ASSERT_EQ(back.targets.size(), 1u);
    EXPECT_EQ(back.targets[0].old_version, "2-down");
    EXPECT_EQ(back.targets[0].new_version, "1");
    EXPECT_EQ(back.targets[0].state_transfer, "down-converted to schema 1");
    EXPECT_EQ(back.targets[0].discarded, 0u);
    send_numbered(rt(), "c", "c", 5);
    EXPECT_TRUE(wait_until([&] { return probe::get("c.count") == "15"; }));
    EXPECT_EQ(rt().info("c")->version, "1");
    // Undone once: there is nothing left to undo.
    EXPECT_EQ(rt().rollback("c").outcome, Outcome::rejected);
    std::cout << "[ info ] " << back.to_string();
}

TEST_F(RollbackTest, IsRefusedWhenTheOlderVersionCannotReadTheNewerState) {
    ASSERT_TRUE(rt().load("c", "libcounter_v1.so").ok());
    const auto up = rt().replace("c", "libcounter_v2.so");
    ASSERT_TRUE(up.ok());
    send_numbered(rt(), "c", "a", 5);
    const auto back = rt().rollback("c");
    EXPECT_EQ(back.outcome, Outcome::aborted) << back.to_string();
    EXPECT_NE(back.reason.find("cannot read state schema 2"), std::string::npos) << back.reason;
    EXPECT_NE(back.reason.find("-from-checkpoint"), std::string::npos) << back.reason;
    send_numbered(rt(), "c", "b", 5);
    EXPECT_TRUE(wait_until([&] { return probe::get("c.count") == "10"; }));
    EXPECT_EQ(rt().info("c")->version, "2");
}

TEST_F(RollbackTest, FromCheckpointRestartsTheOlderVersionAndCountsWhatItDiscards) {
    config.probation = std::chrono::seconds(60);
    ASSERT_TRUE(rt().load("c", "libcounter_v1.so").ok());
    send_numbered(rt(), "c", "a", 3);
    const auto up = rt().replace("c", "libcounter_v2.so");
    ASSERT_TRUE(up.ok());
    send_numbered(rt(), "c", "b", 4);
    EXPECT_TRUE(wait_until([&] { return probe::get("c.count") == "7"; }));
    const auto back = rt().rollback_transaction(up.id, true);
    ASSERT_TRUE(back.ok()) << back.to_string();
    ASSERT_EQ(back.targets.size(), 1u);
    EXPECT_EQ(back.targets[0].discarded, 4u);
    EXPECT_EQ(back.targets[0].state_transfer, "commit-time checkpoint (schema 1)");
    send_numbered(rt(), "c", "c", 2);
    EXPECT_TRUE(wait_until([&] { return probe::get("c.count") == "5"; }));  // 3 + 2
    EXPECT_EQ(rt().info("c")->version, "1");
    EXPECT_FALSE(rt().info("c")->provisional);
    std::cout << "[ info ] " << back.to_string();
}

TEST_F(RollbackTest, UndoesAWholeGroupAsOneTransaction) {
    config.probation = std::chrono::seconds(60);
    ASSERT_TRUE(rt().load("a", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v2.so").ok());
    const auto up = rt().syn_replace({{"a", "libcounter_v3.so"}, {"b", "libcounter_v3.so"}});
    ASSERT_TRUE(up.ok());
    const auto back = rt().rollback("b");
    ASSERT_TRUE(back.ok()) << back.to_string();
    EXPECT_EQ(back.targets.size(), 2u);
    EXPECT_EQ(rt().info("a")->version, "2");
    EXPECT_EQ(rt().info("b")->version, "2");
}

TEST_F(RollbackTest, NamesWhatItCannotUndo) {
    EXPECT_NE(rt().rollback("nobody").reason.find("no committed transaction replaced"),
              std::string::npos);
    ASSERT_TRUE(rt().load("c", "libcounter_v2.so").ok());
    EXPECT_EQ(rt().rollback("c").outcome, Outcome::rejected);  // a load has nothing before it
    EXPECT_EQ(rt().rollback_transaction(42).outcome, Outcome::rejected);
}

// The ladder, outside probation: report → restart → roll back to the previous version.
TEST_F(RuntimeTest, AFailingAuditClimbsTheLadderUpToARollback) {
    config.audit_period = std::chrono::milliseconds(50);
    probe::set("watch.subscribe", "upgrader audit");
    ASSERT_TRUE(rt().load("watch", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().load("c", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().replace("c", "libcounter_audit_fails.so").ok());
    ASSERT_TRUE(wait_until([&] { return events_of("watch").size() >= 3; }));
    const auto audits = events_of("watch");
    EXPECT_NE(audits[0].payload.find("c 2-audit_fails report: count"), std::string::npos)
        << audits[0].payload;
    EXPECT_NE(audits[1].payload.find(" restart: "), std::string::npos) << audits[1].payload;
    EXPECT_NE(audits[2].payload.find(" rollback: "), std::string::npos) << audits[2].payload;
    ASSERT_TRUE(wait_until([&] { return rt().info("c")->version == "2"; }));
    ASSERT_TRUE(wait_until([&] { return rt().info("c")->audit_healthy; }));
    std::vector<std::string> commands;
    for (const auto& r : rt().history()) commands.push_back(r.command);
    EXPECT_NE(std::find(commands.begin(), commands.end(), "restart c"), commands.end());
    EXPECT_NE(std::find(commands.begin(), commands.end(), "rollback c"), commands.end());
    EXPECT_TRUE(rt().info("c")->enabled);
}

// With no previous version to go back to, the ladder ends with the module disabled and an alarm.
TEST_F(RuntimeTest, AFailingAuditWithNothingToGoBackToDisablesTheModuleAndRaisesAnAlarm) {
    config.audit_period = std::chrono::milliseconds(50);
    probe::set("watch.subscribe", "upgrader alarm");
    ASSERT_TRUE(rt().load("watch", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().load("c", "libcounter_audit_fails.so").ok());
    ASSERT_TRUE(wait_until([&] { return !events_of("watch").empty(); }));
    const auto alarm = events_of("watch").front();
    EXPECT_EQ(alarm.sender, "upgrader");
    EXPECT_NE(alarm.payload.find("c 2-audit_fails disabled: "), std::string::npos) << alarm.payload;
    const auto info = *rt().info("c");
    EXPECT_FALSE(info.enabled);
    EXPECT_FALSE(info.audit_healthy);
    EXPECT_GE(info.audit_failures, 3u);
    EXPECT_TRUE(info.audit_step == "disable" || info.audit_step == "disabled") << info.audit_step;
    // Still serving: disabled means it initiates nothing, not that it drops input.
    send_numbered(rt(), "c", "m", 3);
    EXPECT_TRUE(wait_until([&] { return probe::get("c.count") == "3"; }));
}

}  // namespace
}  // namespace nonstop::test
