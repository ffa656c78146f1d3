// No loss, no duplicate, no reordering: producers send without pause while the module is
// replaced over and over; every sender's sequence must arrive complete, once, in order.
#include <atomic>
#include <map>
#include <thread>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

constexpr int kProducers = 4;
constexpr int kReplacements = 200;

TEST_F(RuntimeTest, NothingLostDuplicatedOrReorderedAcrossReplacements) {
    // Producers outrun any consumer; a bounded queue makes them wait instead of building a
    // backlog that no quiescence limit could drain. Blocking is backpressure, not loss.
    config.queue_capacity = 2000;
    ASSERT_TRUE(rt().load("target", "libcounter_v2.so").ok());
    std::atomic<bool> stop{false};
    std::atomic<long> sent[kProducers] = {};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            const std::string sender = "p" + std::to_string(p);
            long seq = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                ASSERT_TRUE(rt().send("target", Message{1, 1, sender, std::to_string(seq)}));
                sent[p] = ++seq;
            }
        });
    }
    int committed = 0;
    for (int i = 0; i < kReplacements; ++i) {
        auto report = rt().replace("target", i % 2 == 0 ? "libcounter_v3.so" : "libcounter_v2.so");
        EXPECT_EQ(report.outcome, Outcome::committed) << report.to_string();
        if (!report.ok()) break;
        ++committed;
    }
    stop = true;
    for (auto& t : producers) t.join();
    ASSERT_EQ(committed, kReplacements);
    long total = 0;
    for (auto& s : sent) total += s;
    ASSERT_TRUE(probe::wait_count(static_cast<std::size_t>(total)));

    std::map<std::string, std::vector<long>> by_sender;
    std::map<std::string, int> versions;
    for (auto& e : events_of("target")) {
        by_sender[e.sender].push_back(std::stol(e.payload));
        ++versions[e.version];
    }
    for (int p = 0; p < kProducers; ++p) {
        const auto& seqs = by_sender["p" + std::to_string(p)];
        ASSERT_EQ(static_cast<long>(seqs.size()), sent[p].load()) << "producer " << p;
        for (long i = 0; i < static_cast<long>(seqs.size()); ++i)
            ASSERT_EQ(seqs[i], i) << "producer " << p << " at position " << i;
    }
    EXPECT_EQ(committed, kReplacements);
    EXPECT_EQ(probe::get("target.count"), std::to_string(total));  // state carried every time
    EXPECT_EQ(rt().info("target")->version, "2");
    EXPECT_GT(total, 0);
    std::cout << "[ info ] " << total << " messages from " << kProducers << " producers across "
              << kReplacements << " replacements (v2: " << versions["2"] << ", v3: " << versions["3"]
              << ")\n";
}

}  // namespace
}  // namespace nonstop::test

namespace nonstop::test {
namespace {

// The same guarantee for group transactions of 4 modules, every other one made to abort (one
// member goes to version 1, which cannot read the others' state schema).
TEST_F(RuntimeTest, NothingLostAcrossGroupTransactionsHalfOfThemAborted) {
    constexpr int kModules = 4;
    constexpr int kTransactions = 60;
    config.queue_capacity = 2000;
    for (int m = 0; m < kModules; ++m)
        ASSERT_TRUE(rt().load("g" + std::to_string(m), "libcounter_v2.so").ok());
    std::atomic<bool> stop{false};
    std::atomic<long> sent[kProducers] = {};
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p) {
        producers.emplace_back([&, p] {
            const std::string sender = "p" + std::to_string(p);
            long seq = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                // Every message goes to every module, so each module sees each sequence.
                for (int m = 0; m < kModules; ++m)
                    ASSERT_TRUE(rt().send("g" + std::to_string(m), Message{1, 1, sender, std::to_string(seq)}));
                sent[p] = ++seq;
            }
        });
    }
    int committed = 0, aborted = 0;
    std::string next = "libcounter_v3.so";
    for (int i = 0; i < kTransactions; ++i) {
        std::vector<Upgrader::Change> changes;
        for (int m = 0; m < kModules; ++m) changes.push_back({"g" + std::to_string(m), next});
        const bool doomed = i % 2 == 1;
        if (doomed) changes[i % kModules].library = "libcounter_v1.so";
        auto report = rt().upgrader().syn_replace(changes, i % 4 < 2 ? Upgrader::Mode::concurrent
                                                                      : Upgrader::Mode::sequential);
        EXPECT_EQ(report.outcome, doomed ? Outcome::aborted : Outcome::committed) << report.to_string();
        report.ok() ? ++committed : ++aborted;
        if (report.ok()) next = next == "libcounter_v3.so" ? "libcounter_v2.so" : "libcounter_v3.so";
    }
    stop = true;
    for (auto& t : producers) t.join();
    long total = 0;
    for (auto& s : sent) total += s;
    ASSERT_TRUE(probe::wait_count(static_cast<std::size_t>(total * kModules)));
    for (int m = 0; m < kModules; ++m) {
        const std::string name = "g" + std::to_string(m);
        std::map<std::string, std::vector<long>> by_sender;
        for (auto& e : events_of(name)) by_sender[e.sender].push_back(std::stol(e.payload));
        for (int p = 0; p < kProducers; ++p) {
            const auto& seqs = by_sender["p" + std::to_string(p)];
            ASSERT_EQ(static_cast<long>(seqs.size()), sent[p].load()) << name << " producer " << p;
            for (long i = 0; i < static_cast<long>(seqs.size()); ++i)
                ASSERT_EQ(seqs[i], i) << name << " producer " << p << " at " << i;
        }
        EXPECT_EQ(probe::get(name + ".count"), std::to_string(total));
    }
    EXPECT_EQ(committed, kTransactions / 2);
    EXPECT_EQ(aborted, kTransactions / 2);
    std::cout << "[ info ] " << total * kModules << " messages across " << committed
              << " committed and " << aborted << " aborted group transactions\n";
}

}  // namespace
}  // namespace nonstop::test
