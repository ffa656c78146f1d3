// Runtime::syn_replace with an outside agreement: the participant's side of a fleet's two-phase
// commit, without ZooKeeper. The agreement is asked once every target voted yes, while new input
// is buffered; its answer decides.
#include <atomic>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

TEST_F(RuntimeTest, AgreementSaysYesTheGroupCommitsWithNothingLost) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    std::atomic<int> asked{0};
    auto report = rt().syn_replace({{"a", "libcounter_v2.so"}, {"b", "libcounter_v2.so"}},
                                   Mode::concurrent, [&]() -> std::string {
                                       ++asked;
                                       // Input sent while the agreement is pending is buffered.
                                       send_numbered(rt(), "a", "held", 5);
                                       return {};
                                   });
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(asked, 1);
    EXPECT_EQ(rt().info("a")->version, "2");
    EXPECT_EQ(rt().info("b")->version, "2");
    EXPECT_TRUE(wait_until([&] { return rt().info("a")->handled == 5; }));
    for (const auto& e : events_of("a")) EXPECT_EQ(e.version, "2");
}

TEST_F(RuntimeTest, AgreementSaysNoTheGroupAbortsWithItsReasonAndNothingLost) {
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    ASSERT_TRUE(rt().load("b", "libcounter_v1.so").ok());
    auto report = rt().syn_replace({{"a", "libcounter_v2.so"}, {"b", "libcounter_v2.so"}},
                                   Mode::concurrent, [&]() -> std::string {
                                       send_numbered(rt(), "b", "held", 5);
                                       return "the fleet decided to abort";
                                   });
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_EQ(report.reason, "the fleet decided to abort");
    EXPECT_EQ(rt().info("a")->version, "1");
    EXPECT_EQ(rt().info("b")->version, "1");
    EXPECT_TRUE(wait_until([&] { return rt().info("b")->handled == 5; }));
}

TEST_F(RuntimeTest, AgreementIsNotAskedWhenATargetVotesNo) {
    ASSERT_TRUE(rt().load("a", "libfaulty_put_state.so").ok());
    bool asked = false;
    auto report =
        rt().syn_replace({{"a", "libcounter_v2.so"}}, Mode::concurrent, [&]() -> std::string {
            asked = true;
            return {};
        });
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_FALSE(asked);
}

}  // namespace
}  // namespace nonstop::test
