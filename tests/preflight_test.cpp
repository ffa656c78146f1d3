// Preflight: a candidate library is tried in a sandbox child before the host loads it. For each
// way a candidate can fail (crash in a static constructor or in initialize(), throw, exit,
// hang, abort in get_state() on the real checkpoint): the host survives, the old version serves
// on with every message sent before, during and after the attempt delivered in order, the
// reason names the cause, and the candidate was never mapped into the host.
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

using namespace std::chrono_literals;

TransactionOptions with_preflight(bool state = false) {
    TransactionOptions options;
    options.preflight = true;
    options.preflight_state = state;
    return options;
}

// The child of this process that runs the preflight program; 0 when there is none.
pid_t preflight_child() {
    DIR* proc = ::opendir("/proc");
    pid_t found = 0;
    while (dirent* entry = proc ? ::readdir(proc) : nullptr) {
        std::ifstream stat(std::string("/proc/") + entry->d_name + "/stat");
        std::string line;
        if (!std::getline(stat, line)) continue;
        // pid (comm) state ppid ...
        const auto close = line.rfind(')');
        if (close == std::string::npos || line.find("(nonstop-preflig") == std::string::npos)
            continue;
        char state = 0;
        int ppid = 0;
        if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == ::getpid())
            found = static_cast<pid_t>(std::atoi(entry->d_name));
    }
    if (proc) ::closedir(proc);
    return found;
}

bool preflight_child_running() { return preflight_child() != 0; }

class PreflightTest : public RuntimeTest {
protected:
    void SetUp() override {
        RuntimeTest::SetUp();
        config.preflight_timeout = 5s;
    }

    // Loads "m" (counter version 1) and sends it messages before, during and after a
    // replacement by `library`, which must fail; returns the report.
    TransactionReport failed_replacement(const std::string& library, TransactionOptions options) {
        EXPECT_TRUE(rt().load("m", "libcounter_v1.so").ok());
        send_numbered(rt(), "m", "before", 5);
        std::atomic<bool> stop{false};
        std::atomic<int> during{0};
        std::thread sender([&] {
            while (!stop.load()) {
                if (!rt().send(
                        "m",
                        Message{
                            messages::kRecord, 1, {}, "during" + std::to_string(during.load())}))
                    break;
                ++during;
                std::this_thread::sleep_for(1ms);
            }
        });
        const auto report = rt().replace("m", library, options);
        stop = true;
        sender.join();
        send_numbered(rt(), "m", "after", 5);
        EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
        EXPECT_EQ(rt().info("m")->version, "1");
        expect_all_served_by_v1(10 + during.load(), during.load());
        return report;
    }

    // Every message, in the order sent, served by version 1 exactly once.
    void expect_all_served_by_v1(int total, int during) {
        ASSERT_TRUE(wait_until([&] { return static_cast<int>(events_of("m").size()) >= total; }));
        const auto events = events_of("m");
        ASSERT_EQ(static_cast<int>(events.size()), total);
        std::vector<std::string> expected;
        for (int i = 0; i < 5; ++i) expected.push_back("before" + std::to_string(i));
        for (int i = 0; i < during; ++i) expected.push_back("during" + std::to_string(i));
        for (int i = 0; i < 5; ++i) expected.push_back("after" + std::to_string(i));
        for (std::size_t i = 0; i < events.size(); ++i) {
            EXPECT_EQ(events[i].version, "1");
            EXPECT_EQ(events[i].payload, expected[i]);
        }
    }

    void expect_reason(const TransactionReport& report, const std::string& fragment) {
        EXPECT_NE(report.reason.find(fragment), std::string::npos) << report.reason;
    }
};

TEST_F(PreflightTest, CandidateSegfaultingInInitializeIsRefusedAndNeverMapped) {
    const auto report = failed_replacement("libcandidate_segv_init.so", with_preflight());
    expect_reason(report,
                  "candidate libcandidate_segv_init.so (kind counter, version segv_init) "
                  "crashed with SIGSEGV in initialize() during preflight");
    ASSERT_EQ(report.targets.size(), 1u);
    EXPECT_TRUE(report.targets[0].preflight);
    EXPECT_FALSE(mapped("libcandidate_segv_init"));
}

TEST_F(PreflightTest, CandidateCrashingInAStaticConstructorIsRefusedAndNeverMapped) {
    const auto report = failed_replacement("libcandidate_ctor_crash.so", with_preflight());
    expect_reason(report,
                  "candidate libcandidate_ctor_crash.so crashed with SIGSEGV while "
                  "loading (in a static constructor) during preflight");
    EXPECT_FALSE(mapped("libcandidate_ctor_crash"));
}

TEST_F(PreflightTest, CandidateThrowingInInitializeIsRefusedWithWhatItThrew) {
    const auto report = failed_replacement("libcandidate_throw_init.so", with_preflight());
    expect_reason(report,
                  "(kind counter, version throw_init) threw in initialize() during "
                  "preflight: no route table in the configuration");
    EXPECT_FALSE(mapped("libcandidate_throw_init"));
}

TEST_F(PreflightTest, CandidateExitingInInitializeIsRefusedWithItsStatus) {
    const auto report = failed_replacement("libcandidate_exit_init.so", with_preflight());
    expect_reason(report, "exited with status 7 in initialize() during preflight");
    EXPECT_FALSE(mapped("libcandidate_exit_init"));
}

TEST_F(PreflightTest, CandidateHangingInInitializeIsKilledAtTheLimit) {
    config.preflight_timeout = 1s;
    const auto report = failed_replacement("libcandidate_hang_init.so", with_preflight());
    expect_reason(report,
                  "(kind counter, version hang_init) hung in initialize() during "
                  "preflight: killed after 1.000 s");
    EXPECT_FALSE(mapped("libcandidate_hang_init"));
    EXPECT_FALSE(preflight_child_running());
}

// Preflight runs before buffering: while the child works, the old version serves.
TEST_F(PreflightTest, TheOldVersionServesWhileTheCandidateIsTried) {
    config.preflight_timeout = 30s;
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    std::atomic<bool> done{false};
    TransactionReport report;
    std::thread upgrader([&] {
        report = rt().replace("m", "libcandidate_hang_init.so", with_preflight());
        done = true;
    });
    ASSERT_TRUE(wait_until(preflight_child_running));
    send_numbered(rt(), "m", "meanwhile", 1);
    EXPECT_TRUE(wait_until([] { return events_of("m").size() == 1; }));
    EXPECT_FALSE(done.load());  // served while the transaction was still trying the candidate
    // Ends the hung child early, as an operator might; the transaction names the signal (the
    // step it names depends on how far the child got before the kill).
    ::kill(preflight_child(), SIGKILL);
    upgrader.join();
    EXPECT_EQ(report.outcome, Outcome::aborted);
    expect_reason(report, "SIGKILL");
}

TEST_F(PreflightTest, CandidateAbortingInGetStateVotesNoWithTheStateCheck) {
    const auto report = failed_replacement("libcandidate_abort_state.so", with_preflight(true));
    expect_reason(report,
                  "candidate libcandidate_abort_state.so (kind counter, version "
                  "abort_state) crashed with SIGABRT in get_state() on the checkpoint "
                  "of version 1 during preflight");
    ASSERT_EQ(report.targets.size(), 1u);
    EXPECT_EQ(report.targets[0].vote, Vote::no);
    EXPECT_TRUE(report.targets[0].preflight_state);
    // The host loaded it (its initialize passed) but never ran its get_state(); it is gone.
    EXPECT_TRUE(wait_until([] { return !mapped("libcandidate_abort_state"); }));
}

TEST_F(PreflightTest, APassingCandidateCommitsAndItsReportShowsTheCost) {
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    send_numbered(rt(), "m", "before", 3);
    const auto report = rt().replace("m", "libcandidate_ok.so", with_preflight(true));
    ASSERT_TRUE(report.ok()) << report.to_string();
    ASSERT_EQ(report.targets.size(), 1u);
    const auto& t = report.targets[0];
    EXPECT_TRUE(t.preflight);
    EXPECT_GT(t.preflight_time.count(), 0);
    EXPECT_TRUE(t.preflight_state);
    EXPECT_GT(t.preflight_state_time.count(), 0);
    EXPECT_NE(report.to_string().find("preflight "), std::string::npos);
    send_numbered(rt(), "m", "after", 1);
    ASSERT_TRUE(wait_until([] { return events_of("m").size() == 4; }));
    EXPECT_EQ(events_of("m").back().version, "ok");
    EXPECT_EQ(rt().info("m")->version, "ok");
    EXPECT_FALSE(preflight_child_running());
}

TEST_F(PreflightTest, OffByDefaultForEmbeddersAndOnFromTheConfig) {
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    auto report = rt().replace("m", "libcounter_v2.so");
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_FALSE(report.targets[0].preflight);
    TransactionOptions off;
    off.preflight = false;
    report = rt().replace("m", "libcandidate_ok.so", off);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_FALSE(report.targets[0].preflight);
}

TEST_F(PreflightTest, TheConfigDefaultAppliesToLoadsToo) {
    config.preflight = true;
    const auto report = rt().load("n", "libcandidate_segv_init.so");
    EXPECT_EQ(report.outcome, Outcome::aborted);
    expect_reason(report, "crashed with SIGSEGV in initialize() during preflight");
    EXPECT_FALSE(rt().info("n"));
    EXPECT_FALSE(mapped("libcandidate_segv_init"));
    EXPECT_TRUE(rt().load("n", "libcandidate_ok.so").ok());
}

TEST_F(PreflightTest, AnotherKindIsRefusedBeforeTheHostLoadsIt) {
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto report = rt().replace("m", "libfaulty_other_kind.so", with_preflight());
    EXPECT_EQ(report.outcome, Outcome::aborted);
    expect_reason(report, "holds a module of kind 'other', but module 'm' is of kind 'counter'");
    EXPECT_FALSE(mapped("libfaulty_other_kind"));
}

TEST_F(PreflightTest, AGroupWithOneFailingCandidateChangesNothing) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    const auto report =
        rt().syn_replace({{"a", "libcandidate_ok.so"}, {"b", "libcandidate_segv_init.so"}},
                         Mode::concurrent, with_preflight());
    EXPECT_EQ(report.outcome, Outcome::aborted);
    expect_reason(report, "crashed with SIGSEGV in initialize()");
    EXPECT_EQ(rt().info("a")->version, "1");
    EXPECT_EQ(rt().info("b")->version, "1");
}

// Syn_Upgrade loads its additions once the replaced modules voted yes (figure 4.12); their
// preflight still runs before voting, so a failing one stops the group before any buffering.
TEST_F(PreflightTest, ALateAdditionIsTriedBeforeTheReplacedModulesVote) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    const auto report =
        rt().syn_upgrade({{"a", "libcandidate_ok.so"}}, {{"n", "libcandidate_throw_init.so"}},
                         Mode::concurrent, with_preflight());
    EXPECT_EQ(report.outcome, Outcome::aborted);
    expect_reason(report, "threw in initialize() during preflight");
    ASSERT_EQ(report.targets.size(), 2u);
    EXPECT_EQ(report.targets[0].vote, Vote::none);
    EXPECT_EQ(rt().info("a")->version, "1");
    EXPECT_FALSE(rt().info("n"));
    EXPECT_FALSE(mapped("libcandidate_throw_init"));
    const auto ok = rt().syn_upgrade({{"a", "libcandidate_ok.so"}}, {{"n", "libcounter_v2.so"}},
                                     Mode::concurrent, with_preflight());
    ASSERT_TRUE(ok.ok()) << ok.to_string();
    EXPECT_TRUE(ok.targets[1].preflight);
}

TEST_F(PreflightTest, AMissingPreflightProgramIsAnErrorNotACrash) {
    config.preflight_program = "/nonexistent/nonstop-preflight";
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto report = rt().replace("m", "libcandidate_ok.so", with_preflight());
    EXPECT_EQ(report.outcome, Outcome::aborted);
    expect_reason(report,
                  "the preflight program '/nonexistent/nonstop-preflight' "
                  "(Config::preflight_program) is not an executable file");
    EXPECT_EQ(rt().info("m")->version, "1");
}

}  // namespace
}  // namespace nonstop::test
