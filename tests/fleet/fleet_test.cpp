// The fleet against a real ZooKeeper server on loopback (scripts/zookeeper) and real member
// processes (nonstop-shell running member.tcl, which hosts the test module "counter" and sends
// it traffic). The test observes through its own coordinator-only Fleet and through
// coordinator shells, and waits on conditions in ZooKeeper and in the members' output.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <nonstop/fleet/fleet.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "fleet_harness.hpp"

namespace nonstop::test {
namespace {

const std::string kModules = NONSTOP_TEST_MODULE_DIR;
std::string lib(int version) {
    return kModules + "/libcounter_v" + std::to_string(version) + ".so";
}

class FleetTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() { zk_ = new ZooKeeperServer(); }
    static void TearDownTestSuite() {
        delete zk_;
        zk_ = nullptr;
    }

    void SetUp() override {
        cluster_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        FleetConfig c;
        c.zookeeper = zk().connect();
        c.cluster = cluster_;
        fleet_ = std::make_unique<Fleet>(c, nullptr);
    }

    virtual ZooKeeperServer& zk() { return *zk_; }

    /// Starts member `id` hosting counter version `initial`, and waits until it is listed with
    /// it (unless `wait` is false).
    Child& start_member(const std::string& id, std::vector<std::string> env = {},
                        const std::string& initial = "1", bool wait = true) {
        auto log = dir_.path() + "/" + id + ".log";
        auto& m = members_[id];
        m.reset();
        m = std::make_unique<Child>(
            std::vector<std::string>{NONSTOP_SHELL_PATH, "--zookeeper", zk().connect(), "--cluster",
                                     cluster_, "--member", id, NONSTOP_MEMBER_SCRIPT, kModules,
                                     stop_file(id), initial},
            log, env);
        if (wait) {
            EXPECT_TRUE(eventually([&] { return version(id) == initial; })) << m->output();
        }
        return *m;
    }

    void start_members(int n) {
        for (int i = 1; i <= n; ++i) start_member("m" + std::to_string(i));
    }

    std::string stop_file(const std::string& id) const { return dir_.path() + "/" + id + ".stop"; }

    /// The version of "counter" member `id` reports; empty if it is not listed.
    std::string version(const std::string& id) {
        for (const auto& m : fleet_->members())
            if (m.id == id)
                for (const auto& mod : m.modules)
                    if (mod.name == "counter") return mod.version;
        return {};
    }

    /// Whether member `id` reports counter `expected`, once its node caught up (a member
    /// updates its node after its slot in a plan).
    ::testing::AssertionResult serving(const std::string& id, const std::string& expected) {
        if (eventually([&] { return version(id) == expected; }, std::chrono::seconds(10)))
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure()
               << id << " serves counter '" << version(id) << "', not '" << expected << "'";
    }

    /// Stops the member's traffic and returns {sent, handled} once it printed them.
    std::pair<long, long> traffic(const std::string& id) {
        std::ofstream(stop_file(id)) << "stop\n";
        // (std::regex trips GCC 12's -Wmaybe-uninitialized under the sanitizers.)
        long sent = -1, handled = -2;
        std::string out;
        EXPECT_TRUE(eventually([&] {
            out = members_[id]->output();
            const auto at = out.find("sent ");
            return at != std::string::npos && out.find('\n', at) != std::string::npos &&
                   std::sscanf(out.c_str() + at, "sent %ld handled %ld", &sent, &handled) == 2;
        })) << out;
        return {sent, handled};
    }

    /// Runs `script` in a coordinator shell; returns the child (running).
    std::unique_ptr<Child> coordinator(const std::string& script, const std::string& name) {
        const auto file = dir_.path() + "/" + name + ".tcl";
        std::ofstream(file) << script;
        return std::make_unique<Child>(
            std::vector<std::string>{NONSTOP_SHELL_PATH, "--zookeeper", zk().connect(), "--cluster",
                                     cluster_, "--coordinator", file},
            dir_.path() + "/" + name + ".log");
    }

    const MemberOutcome* outcome(const PlanReport& r, const std::string& member) {
        for (const auto& m : r.members)
            if (m.member == member) return &m;
        return nullptr;
    }

    static ZooKeeperServer* zk_;
    TempDir dir_;
    std::string cluster_;
    std::unique_ptr<Fleet> fleet_;
    std::map<std::string, std::unique_ptr<Child>> members_;
};

ZooKeeperServer* FleetTest::zk_ = nullptr;

TEST_F(FleetTest, MembersRegisterWithModulesDigestsAndHealth) {
    start_members(3);
    const auto members = fleet_->members();
    ASSERT_EQ(members.size(), 3u);
    for (const auto& m : members) {
        EXPECT_EQ(m.health, "ok");
        ASSERT_EQ(m.modules.size(), 1u);
        EXPECT_EQ(m.modules[0].library, lib(1));
        EXPECT_EQ(m.modules[0].sha256.size(), 64u);
        EXPECT_EQ(m.modules[0].sha256, members[0].modules[0].sha256);
    }
    // Any shell of the cluster lists them.
    auto shell = coordinator(
        "foreach m [nonstop fleet members] { puts \"member [dict get $m id]\" }\n", "list");
    EXPECT_EQ(shell->wait(), 0) << shell->output();
    for (const char* id : {"member m1", "member m2", "member m3"})
        EXPECT_NE(shell->output().find(id), std::string::npos) << shell->output();
    // A member that leaves is no longer listed.
    members_["m2"]->signal(SIGTERM);
    EXPECT_TRUE(eventually([&] { return fleet_->members().size() == 2; }));
}

TEST_F(FleetTest, RollingReplaceUnderTrafficLosesNothingOnAnyMember) {
    start_members(3);
    auto shell = coordinator("puts [nonstop fleet replace counter " + lib(2) +
                                 " -batch 2 -probation 0.2]\n"
                                 "puts [Rolling_Replace counter " +
                                 lib(3) + "]\n",
                             "rolling");
    ASSERT_EQ(shell->wait(), 0) << shell->output();
    const auto history = fleet_->history();
    ASSERT_EQ(history.size(), 2u);
    for (const auto& plan : history) {
        EXPECT_EQ(plan.state, "done") << plan.to_string();
        ASSERT_EQ(plan.members.size(), 3u);
        for (const auto& m : plan.members) EXPECT_EQ(m.state, "done") << plan.to_string();
    }
    EXPECT_EQ(history[0].members[0].before, "counter 1");
    EXPECT_EQ(history[0].members[0].after, "counter 2");
    for (const char* id : {"m1", "m2", "m3"}) {
        EXPECT_TRUE(serving(id, "3"));
        const auto [sent, handled] = traffic(id);
        EXPECT_GT(sent, 0);
        EXPECT_EQ(sent, handled) << id << " lost messages";
    }
}

TEST_F(FleetTest, RollingReplaceUnderProbationEndsWithEveryMemberReleasePermanent) {
    start_members(3);
    const auto r = fleet_->replace("counter", lib(2), 1, std::chrono::milliseconds(300));
    EXPECT_EQ(r.state, "done") << r.to_string();
    ASSERT_EQ(r.members.size(), 3u);
    for (const auto& m : r.members) {
        EXPECT_EQ(m.state, "done") << r.to_string();
        EXPECT_GT(m.transaction, 0u) << r.to_string();
        // The member moved on only once its runtime made the release permanent: its probation
        // ended with no health rule tripped.
        EXPECT_EQ(m.release.rfind("permanent (expired: probation of 0.3 s", 0), 0u)
            << r.to_string();
    }
    for (const char* id : {"m1", "m2", "m3"}) {
        EXPECT_TRUE(serving(id, "2"));
        const auto [sent, handled] = traffic(id);
        EXPECT_EQ(sent, handled) << id << " lost messages";
    }
}

TEST_F(FleetTest, RollingReplaceWhoseVersionFailsIsRolledBackByTheMemberHealthRule) {
    // From version 2: libcounter_throws.so (same kind, state schema 2) records every message,
    // then throws; version 2 reads its state back.
    for (const char* id : {"m1", "m2", "m3"}) start_member(id, {}, "2");
    const auto r = fleet_->replace("counter", kModules + "/libcounter_throws.so", 1,
                                   std::chrono::milliseconds(20000));
    EXPECT_EQ(r.state, "rolled-back") << r.to_string();
    // Within its probation, not at its end: the health rule decided.
    EXPECT_NE(r.reason.find("member 'm1' failed"), std::string::npos) << r.to_string();
    EXPECT_NE(r.reason.find("rolled back by rule 'failure"), std::string::npos) << r.to_string();
    ASSERT_NE(outcome(r, "m1"), nullptr);
    EXPECT_EQ(outcome(r, "m1")->state, "failed");
    EXPECT_EQ(outcome(r, "m1")->after, "counter 2") << r.to_string();
    EXPECT_EQ(outcome(r, "m1")->release.rfind("rolled back (failure", 0), 0u) << r.to_string();
    EXPECT_EQ(outcome(r, "m2")->state, "skipped");
    EXPECT_EQ(outcome(r, "m3")->state, "skipped");
    for (const char* id : {"m1", "m2", "m3"}) {
        EXPECT_TRUE(serving(id, "2"));
        const auto [sent, handled] = traffic(id);
        EXPECT_GT(sent, 0);
        EXPECT_EQ(sent, handled) << id << " lost messages";
    }
}

TEST_F(FleetTest, MemberWithAStateDirRecordsThePlanAsTheIssuerOfItsTransactions) {
    const auto state_dir = dir_.path() + "/m1-state";
    start_member("m1", {"NONSTOP_STATE_DIR=" + state_dir});
    start_member("m2");
    const auto rolling = fleet_->replace("counter", lib(2), 1, std::chrono::milliseconds(200));
    ASSERT_EQ(rolling.state, "done") << rolling.to_string();
    const auto atomic = fleet_->syn_replace({{"counter", lib(3)}});
    ASSERT_EQ(atomic.state, "committed") << atomic.to_string();
    // The member's own release database (the store writes each report before the command
    // returns, so the slot's outcome implies the row).
    sqlite3* db = nullptr;
    ASSERT_EQ(
        sqlite3_open_v2((state_dir + "/nonstop.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
        SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT issuer, command, outcome, release_state FROM transactions "
                                 "WHERE command LIKE '%counter%' ORDER BY id",
                                 -1, &st, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    std::vector<std::array<std::string, 4>> rows;
    while (sqlite3_step(st) == SQLITE_ROW) {
        std::array<std::string, 4> row;
        for (int i = 0; i < 4; ++i)
            row[static_cast<std::size_t>(i)] =
                reinterpret_cast<const char*>(sqlite3_column_text(st, i));
        rows.push_back(row);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    std::string all;
    for (const auto& row : rows) all += row[0] + " | " + row[1] + " | " + row[3] + "\n";
    auto issued_by = [&](const PlanReport& plan) -> const std::array<std::string, 4>* {
        for (const auto& row : rows)
            if (row[0].rfind("fleet plan " + plan.id + " (", 0) == 0) return &row;
        return nullptr;
    };
    const auto* replaced = issued_by(rolling);
    ASSERT_NE(replaced, nullptr) << all;
    EXPECT_NE((*replaced)[0].find("cluster " + cluster_), std::string::npos) << all;
    EXPECT_EQ((*replaced)[1], "replace counter " + lib(2)) << all;
    EXPECT_EQ((*replaced)[2], "committed") << all;
    EXPECT_EQ((*replaced)[3], "permanent") << all;
    const auto* synced = issued_by(atomic);
    ASSERT_NE(synced, nullptr) << all;
    EXPECT_NE((*synced)[1].find("syn_replace"), std::string::npos) << all;
    EXPECT_EQ((*synced)[2], "committed") << all;
}

TEST_F(FleetTest, MemberKilledMidRippleStopsItAndRollsBackTheUpgraded) {
    // From version 2 to 3: the rollback goes back to 2, which reads version 3's state (version
    // 1 reads only its own schema).
    start_member("m1", {}, "2");
    start_member("m2", {"NONSTOP_FLEET_FAULT=exit-on-work"}, "2");  // dies when its turn comes
    start_member("m3", {}, "2");
    const auto r = fleet_->replace("counter", lib(3), 1, std::chrono::milliseconds(0));
    EXPECT_EQ(r.state, "rolled-back") << r.to_string();
    EXPECT_NE(r.reason.find("m2"), std::string::npos) << r.to_string();
    ASSERT_NE(outcome(r, "m1"), nullptr);
    EXPECT_EQ(outcome(r, "m1")->state, "rolled-back");
    EXPECT_EQ(outcome(r, "m1")->after, "counter 2");
    EXPECT_EQ(outcome(r, "m2")->state, "failed");
    EXPECT_EQ(outcome(r, "m3")->state, "skipped");
    EXPECT_TRUE(serving("m1", "2"));
    EXPECT_TRUE(serving("m3", "2"));
    for (const char* id : {"m1", "m3"}) {
        const auto [sent, handled] = traffic(id);
        EXPECT_EQ(sent, handled) << id << " lost messages";
    }
}

TEST_F(FleetTest, CoordinatorKilledMidRippleThenResumedOrAbortedFromAnotherShell) {
    start_members(3);
    for (const char* ending : {"resume", "abort"}) {
        const int from = ending == std::string("resume") ? 1 : 2;
        const int to = from + 1;
        auto shell =
            coordinator("nonstop fleet replace counter " + lib(to) + " -batch 1 -probation 8\n",
                        std::string("driver-") + ending);
        // Killed while the first member is on probation (its runtime's).
        std::string id;
        ASSERT_TRUE(eventually([&] {
            const auto h = fleet_->history();
            if (h.empty() || h.back().command.find(lib(to)) == std::string::npos) return false;
            id = h.back().id;
            const auto* m1 = outcome(h.back(), "m1");
            return m1 && m1->state == "probation";
        }));
        shell->signal(SIGKILL);
        shell->wait();
        EXPECT_EQ(fleet_->plan(id).state, "running");
        auto other = coordinator(std::string("puts [nonstop fleet ") + ending + " " + id + "]\n",
                                 std::string("other-") + ending);
        if (ending == std::string("resume")) {
            // The resumed plan still observes its probation: let it ripple on quickly by
            // looking at it from here only; the test waits for its end.
            EXPECT_TRUE(
                eventually([&] { return fleet_->plan(id).finished(); }, std::chrono::seconds(120)));
            EXPECT_EQ(other->wait(), 0) << other->output();
            const auto r = fleet_->plan(id);
            EXPECT_EQ(r.state, "done") << r.to_string();
            for (const char* m : {"m1", "m2", "m3"}) EXPECT_TRUE(serving(m, "2"));
        } else {
            EXPECT_EQ(other->wait(), 0) << other->output();
            const auto r = fleet_->plan(id);
            EXPECT_EQ(r.state, "aborted") << r.to_string();
            EXPECT_EQ(outcome(r, "m1")->state, "rolled-back") << r.to_string();
            for (const char* m : {"m1", "m2", "m3"}) EXPECT_TRUE(serving(m, "2"));
        }
    }
}

TEST_F(FleetTest, AtomicFleetTransactionOneMemberVotesNoAllStayOld) {
    start_member("m1");
    start_member("m2");
    start_member("m3", {"NONSTOP_FLEET_FAULT=vote-no"});
    const auto r = fleet_->syn_replace({{"counter", lib(2)}});
    EXPECT_EQ(r.state, "aborted") << r.to_string();
    EXPECT_EQ(r.decision, "abort");
    EXPECT_EQ(outcome(r, "m3")->state, "no");
    EXPECT_EQ(outcome(r, "m1")->state, "aborted");
    for (const char* m : {"m1", "m2", "m3"}) {
        EXPECT_TRUE(serving(m, "1"));
        const auto [sent, handled] = traffic(m);
        EXPECT_EQ(sent, handled) << m << " lost messages";
    }
}

TEST_F(FleetTest, AtomicFleetTransactionMemberKilledAfterDecisionAppliesItWhenBack) {
    start_member("m1");
    start_member("m2");
    start_member("m3", {"NONSTOP_FLEET_FAULT=exit-after-decision"});
    const auto r = fleet_->syn_replace({{"counter", lib(2)}});
    EXPECT_EQ(r.state, "committed") << r.to_string();
    EXPECT_NE(r.reason.find("m3"), std::string::npos) << r.to_string();
    EXPECT_EQ(outcome(r, "m1")->state, "committed");
    EXPECT_EQ(outcome(r, "m3")->state, "yes");
    EXPECT_TRUE(serving("m1", "2"));
    EXPECT_TRUE(serving("m2", "2"));
    members_["m3"]->wait();
    start_member("m3", {}, "1", false);  // back with version 1, it applies the decision
    EXPECT_TRUE(eventually([&] { return version("m3") == "2"; }));
    EXPECT_TRUE(
        eventually([&] { return outcome(fleet_->plan(r.id), "m3")->state == "committed"; }));
}

// Its own server, with a data directory that survives the restart.
class FleetRestartTest : public FleetTest {
protected:
    static void SetUpTestSuite() {}
    static void TearDownTestSuite() {}
    void SetUp() override {
        server_ = std::make_unique<ZooKeeperServer>(data_.path());
        FleetTest::SetUp();
    }
    void TearDown() override {
        members_.clear();
        fleet_.reset();
    }
    ZooKeeperServer& zk() override { return *server_; }
    TempDir data_;
    std::unique_ptr<ZooKeeperServer> server_;
};

TEST_F(FleetRestartTest, ZooKeeperRestartedWhileIdleMembersAreBackAndServePlans) {
    start_members(3);
    const int port = server_->port();
    server_.reset();
    server_ = std::make_unique<ZooKeeperServer>(data_.path(), port);
    EXPECT_TRUE(eventually([&] {
        try {
            return fleet_->members().size() == 3;
        } catch (const std::exception&) {
            return false;
        }
    }));
    const auto r = fleet_->replace("counter", lib(2), 3, std::chrono::milliseconds(0));
    EXPECT_EQ(r.state, "done") << r.to_string();
    for (const char* m : {"m1", "m2", "m3"}) EXPECT_TRUE(serving(m, "2"));
}

}  // namespace
}  // namespace nonstop::test

namespace nonstop::test {
namespace {

// A member paused past its session timeout (a frozen host, a partition) loses its session: the
// server removes its node. When it runs again its client learns the session expired, opens a
// new one and registers again.
TEST_F(FleetTest, MemberWhoseSessionExpiredRegistersAgain) {
    start_members(2);
    auto& m1 = *members_["m1"];
    m1.signal(SIGSTOP);
    EXPECT_TRUE(eventually([&] { return version("m1").empty(); }));
    m1.signal(SIGCONT);
    EXPECT_TRUE(eventually([&] {
        for (const auto& m : fleet_->members())
            if (m.id == "m1") return m.sessions == 2 && !m.modules.empty();
        return false;
    }));
    const auto r = fleet_->replace("counter", lib(2), 2, std::chrono::milliseconds(0));
    EXPECT_EQ(r.state, "done") << r.to_string();
    EXPECT_TRUE(serving("m1", "2"));
}

}  // namespace
}  // namespace nonstop::test

namespace nonstop::test {
namespace {

// What an operator can get wrong is refused with one sentence naming what and why, and the
// members keep their version.
TEST_F(FleetTest, OperatorErrorsAreRefusedWithAReason) {
    start_members(1);
    auto shell = coordinator(
        "foreach cmd {{nonstop fleet bogus} {nonstop fleet replace counter /nonexistent.so}\n"
        "             {nonstop fleet replace ghost " +
            lib(2) +
            "}\n"
            "             {nonstop fleet replace counter " +
            lib(2) +
            " -batch 0}\n"
            "             {nonstop fleet resume plan-9999999999}} {\n"
            "    catch $cmd message\n"
            "    puts \"[lrange $::errorCode 0 2]: $message\"\n"
            "}\n",
        "errors");
    EXPECT_EQ(shell->wait(), 0) << shell->output();
    const auto out = shell->output();
    EXPECT_NE(out.find("NONSTOP FLEET USAGE: unknown fleet subcommand 'bogus'"), std::string::npos)
        << out;
    EXPECT_NE(out.find("NONSTOP FLEET ERROR: there is no library '/nonexistent.so'"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("no member of cluster '" + cluster_ + "' runs a module named 'ghost'"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("-batch needs a number of members, at least 1"), std::string::npos) << out;
    EXPECT_NE(out.find("there is no plan 'plan-9999999999'"), std::string::npos) << out;
    EXPECT_TRUE(serving("m1", "1"));
    EXPECT_TRUE(fleet_->history().empty());
}

}  // namespace
}  // namespace nonstop::test
