// Publish/subscribe with subscribers joining, leaving and being swapped.
#include <algorithm>
#include <set>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

std::vector<std::string> subscribers(Runtime& rt, const std::string& publisher,
                                     const std::string& event) {
    for (auto& tag : rt.events())
        if (tag.publisher == publisher && tag.event == event) return tag.subscribers;
    return {};
}

TEST_F(RuntimeTest, SubscribersJoinLeaveAndAreSwappedWithoutMissingAnEvent) {
    probe::set("ticker.publish", "tick");
    probe::set("l1.subscribe", "ticker tick");
    probe::set("l2.subscribe", "ticker tick");
    probe::set("l3.subscribe", "ticker tick");
    ASSERT_TRUE(rt().load("ticker", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().load("l1", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().load("l2", "libcounter_v2.so").ok());
    EXPECT_EQ(subscribers(rt(), "ticker", "tick"), (std::vector<std::string>{"l1", "l2"}));

    ASSERT_TRUE(rt().send("ticker", Message{messages::kNotifyTicks, 1, {}, "3"}));  // 3 events
    ASSERT_TRUE(probe::wait_count(1 + 3 * 2));
    EXPECT_EQ(events_of("l1").size(), 3u);
    EXPECT_EQ(events_of("l2").size(), 3u);
    EXPECT_EQ(events_of("l1")[0].sender, "ticker");

    // l2 leaves: it is gone from the event table and gets nothing more.
    ASSERT_TRUE(rt().unload("l2").ok());
    EXPECT_EQ(subscribers(rt(), "ticker", "tick"), (std::vector<std::string>{"l1"}));
    // l3 joins.
    ASSERT_TRUE(rt().load("l3", "libcounter_v2.so").ok());
    ASSERT_TRUE(rt().send("ticker", Message{messages::kNotifyTicks, 1, {}, "2"}));
    ASSERT_TRUE(probe::wait_count(7 + 1 + 2 * 2));
    EXPECT_EQ(events_of("l2").size(), 3u);
    EXPECT_EQ(events_of("l3").size(), 2u);

    // l1 is swapped while events keep coming: none lost, none twice, in order.
    for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(rt().send("ticker", Message{messages::kNotifyTicks, 1, {}, "5"}));
        ASSERT_TRUE(rt().replace("l1", i % 2 ? "libcounter_v2.so" : "libcounter_v3.so").ok());
    }
    ASSERT_TRUE(probe::wait_count(12 + 20 * (1 + 5 * 2)));
    auto l1 = events_of("l1");
    ASSERT_EQ(l1.size(), 3u + 2u + 100u);
    for (std::size_t i = 0; i < l1.size(); ++i) EXPECT_EQ(l1[i].payload, std::to_string(i + 1));
    std::set<std::string> versions;
    for (auto& e : l1) versions.insert(e.version);
    EXPECT_EQ(versions, (std::set<std::string>{"2", "3"}));
    // The publisher itself can be swapped: its event sequence (state) continues.
    ASSERT_TRUE(rt().replace("ticker", "libcounter_v3.so").ok());
    ASSERT_TRUE(rt().send("ticker", Message{messages::kNotifyTicks, 1, {}, "1"}));
    ASSERT_TRUE(probe::wait_count(12 + 220 + 1 + 2));
    EXPECT_EQ(events_of("l1").back().payload, "106");
    EXPECT_EQ(subscribers(rt(), "ticker", "tick"), (std::vector<std::string>{"l1", "l3"}));
}

TEST_F(RuntimeTest, AbortedReplacementLeavesNoSubscriptionBehind) {
    probe::set("a.subscribe", "");
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    probe::set("a.subscribe", "somebody news");
    // v1 cannot read v2... but here v1 → v1 with init failing after subscribing is simpler:
    probe::set("a.fail_initialize", "1");
    auto report = rt().replace("a", "libcounter_v2.so");
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_TRUE(subscribers(rt(), "somebody", "news").empty());
}

}  // namespace
}  // namespace nonstop::test
