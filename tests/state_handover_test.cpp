// The state hand-over (issue 13): a new version takes the old version's checkpoint by move
// (Module::take_state) when the framework keeps no copy of it, modules with only get_state()
// work unchanged, and a release keeps its commit-time checkpoint for `rollback
// -from-checkpoint` only up to Config::checkpoint_keep_bytes.
#include <string>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

class StateHandoverTest : public RuntimeTest {
protected:
    // Loads module "h" from `library` with a fresh state of `bytes` bytes; later instances
    // start empty, so whatever they hold came through a hand-over.
    void load_holder(const std::string& library, std::size_t bytes) {
        probe::set("h.state_bytes", std::to_string(bytes));
        ASSERT_TRUE(rt().load("h", library).ok());
        probe::set("h.state_bytes", "");
    }
    // Sends `payload` to "h" and waits until its state has grown to `bytes`.
    void grow(const std::string& payload, std::size_t bytes) {
        ASSERT_TRUE(rt().send("h", Message{messages::kRecord, 1, {}, payload}));
        ASSERT_TRUE(wait_until([&] { return probe::get("h.bytes") == std::to_string(bytes); }))
            << probe::get("h.bytes");
    }
    static std::string restored_by() { return probe::get("h.restored_by"); }
    // After an abort the old version (1) resumes on its own: it takes its checkpoint back
    // before it serves again, a moment after the report. Version 2 may have taken a kept copy
    // before the abort, so the version that restored last is what tells.
    static bool took_back() {
        return wait_until([] {
            return probe::get("h.restored_in") == "1" &&
                   probe::get("h.restored_by") == "take_state";
        });
    }
    // h (whose put_state() moves its state out, 4,097 bytes) and c replaced together, c's new
    // version refusing its state: both stay on version 1.
    void abort_a_group_whose_other_member_refuses_its_state() {
        probe::set("h.move_out", "1");
        load_holder("libholder_1.so", 4096);
        ASSERT_TRUE(rt().load("c", "libcounter_v1.so").ok());
        grow("a", 4097);
        const auto report =
            rt().syn_replace({{"h", "libholder_2.so"}, {"c", "libfaulty_get_state.so"}});
        EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
        EXPECT_EQ(rt().info("h")->version, "1");
        EXPECT_EQ(rt().info("c")->version, "1");
    }
    // The new version holds the very bytes the old one's put_state() returned: no copy.
    static bool moved() { return probe::get("h.state_data") == probe::get("h.put_data"); }
};

TEST_F(StateHandoverTest, ANewVersionTakesACheckpointNoReleaseKeepsByMove) {
    config.checkpoint_keep_bytes = 0;
    load_holder("libholder_1.so", 1 << 20);
    grow("ab", (1 << 20) + 2);
    const auto up = rt().replace("h", "libholder_2.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    EXPECT_EQ(up.targets.at(0).checkpoint_bytes, (1u << 20) + 2);
    EXPECT_EQ(restored_by(), "take_state");
    EXPECT_TRUE(moved());
    EXPECT_EQ(probe::get("h.bytes"), std::to_string((1 << 20) + 2));
    grow("c", (1 << 20) + 3);
    EXPECT_EQ(rt().info("h")->version, "2");
    // A rollback makes no release either: the older version takes the newer state by move.
    const auto back = rt().rollback("h");
    ASSERT_TRUE(back.ok()) << back.to_string();
    EXPECT_EQ(restored_by(), "take_state");
    EXPECT_TRUE(moved());
    grow("d", (1 << 20) + 4);
    EXPECT_EQ(rt().info("h")->version, "1");
}

TEST_F(StateHandoverTest, AModuleWithOnlyGetStateRestoresACheckpointHandedOverByMove) {
    config.checkpoint_keep_bytes = 0;
    load_holder("libholder_1.so", 4096);
    grow("x", 4097);
    const auto up = rt().replace("h", "libholder_copy.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    // take_state()'s default hands the checkpoint to get_state(), which copies it.
    EXPECT_EQ(restored_by(), "get_state");
    EXPECT_FALSE(moved());
    grow("y", 4098);
    EXPECT_EQ(rt().info("h")->version, "copy");
    // And the other way round: the older module's put_state() feeds a newer take_state().
    const auto again = rt().replace("h", "libholder_2.so");
    ASSERT_TRUE(again.ok()) << again.to_string();
    EXPECT_EQ(restored_by(), "take_state");
    EXPECT_TRUE(moved());
    grow("z", 4099);
}

TEST_F(StateHandoverTest, ASmallCheckpointIsKeptAndRestoresARollbackFromCheckpoint) {
    config.probation = std::chrono::seconds(60);
    load_holder("libholder_1.so", 1024);
    grow("a", 1025);
    const auto up = rt().replace("h", "libholder_2.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    // The release keeps the checkpoint: the new version restores a copy of it.
    EXPECT_EQ(restored_by(), "get_state");
    EXPECT_FALSE(moved());
    grow("bcd", 1028);
    const auto back = rt().rollback_transaction(up.id, true);
    ASSERT_TRUE(back.ok()) << back.to_string();
    EXPECT_EQ(back.targets.at(0).state_transfer, "commit-time checkpoint (schema 1)");
    EXPECT_EQ(back.targets.at(0).discarded, 1u);
    EXPECT_EQ(rt().info("h")->version, "1");
    EXPECT_EQ(probe::get("h.bytes"), "1025");  // the state at the commit
}

TEST_F(StateHandoverTest, APermanentReleaseKeepsASmallCheckpointToo) {
    load_holder("libholder_1.so", 1024);
    grow("a", 1025);
    const auto up = rt().replace("h", "libholder_2.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    EXPECT_EQ(up.probation.count(), 0);
    EXPECT_EQ(restored_by(), "get_state");
    grow("bc", 1027);
    const auto back = rt().rollback("h", true);
    ASSERT_TRUE(back.ok()) << back.to_string();
    EXPECT_EQ(probe::get("h.bytes"), "1025");
}

TEST_F(StateHandoverTest, ACheckpointOverTheKeepLimitGoesByMoveAndRollbackFromCheckpointSaysWhy) {
    config.probation = std::chrono::seconds(60);
    config.checkpoint_keep_bytes = 64 << 10;
    load_holder("libholder_1.so", 1 << 20);
    const auto up = rt().replace("h", "libholder_2.so");
    ASSERT_TRUE(up.ok()) << up.to_string();
    EXPECT_GT(up.probation.count(), 0);
    EXPECT_EQ(restored_by(), "take_state");
    EXPECT_TRUE(moved());
    grow("a", (1 << 20) + 1);
    const auto refused = rt().rollback_transaction(up.id, true);
    EXPECT_EQ(refused.outcome, Outcome::rejected) << refused.to_string();
    EXPECT_EQ(refused.reason,
              "transaction " + std::to_string(up.id) +
                  " kept no checkpoint of module 'h' (its 1.0 MiB checkpoint was over "
                  "Config::checkpoint_keep_bytes (65536 bytes), so version 2 took it by move)");
    EXPECT_EQ(rt().info("h")->version, "2");
    EXPECT_TRUE(rt().info("h")->provisional);
    // The newer state still goes back by an ordinary rollback.
    const auto back = rt().rollback_transaction(up.id);
    ASSERT_TRUE(back.ok()) << back.to_string();
    EXPECT_EQ(rt().info("h")->version, "1");
    EXPECT_EQ(probe::get("h.bytes"), std::to_string((1 << 20) + 1));
}

TEST_F(StateHandoverTest, AReleaseDropsItsCheckpointOnceTheModuleIsReplacedAgain) {
    config.probation = std::chrono::seconds(60);
    load_holder("libholder_1.so", 1024);
    const auto first = rt().replace("h", "libholder_2.so");
    ASSERT_TRUE(first.ok()) << first.to_string();
    rt().accept(first.id);
    const auto second = rt().replace("h", "libholder_1.so");
    ASSERT_TRUE(second.ok()) << second.to_string();
    // Back to the very version the first release brought (its library held during probation).
    ASSERT_TRUE(rt().rollback_transaction(second.id, true).ok());
    EXPECT_EQ(rt().info("h")->version, "2");
    const auto refused = rt().rollback_transaction(first.id, true);
    EXPECT_EQ(refused.outcome, Outcome::rejected) << refused.to_string();
    EXPECT_EQ(refused.reason, "transaction " + std::to_string(first.id) +
                                  " kept no checkpoint of module 'h' (transaction " +
                                  std::to_string(second.id) + " replaced the module again)");
}

// --- An aborted transaction gives the old version its own checkpoint back ----------------------
// (for a module whose put_state() moves its state out, as one built for O(1) hand-over does)

TEST_F(StateHandoverTest, AnAbortBeforeTheStartGivesTheOldVersionItsCheckpointBack) {
    probe::set("h.move_out", "1");
    load_holder("libholder_1.so", 4096);
    grow("a", 4097);
    const auto report = rt().syn_replace({{"h", "libholder_2.so"}}, Mode::concurrent,
                                         [] { return std::string("the fleet said no"); });
    EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
    EXPECT_EQ(rt().info("h")->version, "1");
    EXPECT_TRUE(took_back());
    EXPECT_TRUE(moved());  // the very bytes it put, back
    grow("b", 4098);
}

TEST_F(StateHandoverTest, ANewVersionThatRefusesAGivenCheckpointLeavesItToTheOldVersion) {
    config.checkpoint_keep_bytes = 0;
    probe::set("h.move_out", "1");
    probe::set("h.refuse", "2");
    load_holder("libholder_1.so", 4096);
    grow("a", 4097);
    const auto report = rt().replace("h", "libholder_2.so");
    EXPECT_EQ(report.outcome, Outcome::aborted) << report.to_string();
    EXPECT_NE(report.reason.find("was told to refuse its state"), std::string::npos)
        << report.reason;
    EXPECT_EQ(rt().info("h")->version, "1");
    EXPECT_TRUE(took_back());
    EXPECT_TRUE(moved());
    grow("b", 4098);
}

TEST_F(StateHandoverTest, AGroupAbortedAtTheStartGivesAKeptCheckpointBack) {
    abort_a_group_whose_other_member_refuses_its_state();
    EXPECT_TRUE(took_back());  // version 2 read the kept copy; version 1 takes it
    EXPECT_TRUE(moved());
    grow("b", 4098);
}

// Over the keep limit, the new version takes the checkpoint by move and holds it while its group
// waits: when another target then refuses its state, it gives the state back (its put_state(),
// in its own thread) and the old version takes it.
TEST_F(StateHandoverTest, AGroupAbortedAfterANewVersionTookTheStateByMoveGetsItBack) {
    config.checkpoint_keep_bytes = 0;
    abort_a_group_whose_other_member_refuses_its_state();
    EXPECT_TRUE(took_back());
    EXPECT_TRUE(moved());  // version 2's put_state() bytes, not a copy
    grow("b", 4098);       // every byte of it
}

}  // namespace
}  // namespace nonstop::test
