// No loss, no duplicate, no reordering: producers send without pause while modules are
// replaced over and over; every sender's sequence must arrive complete, once, in order.
#include <atomic>
#include <map>
#include <thread>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

constexpr int kProducers = 4;

// kProducers threads, each sending its own numbered sequence to every target in turn, as fast
// as the targets accept.
class Producers {
public:
    Producers(Runtime& rt, std::vector<std::string> targets) {
        for (int p = 0; p < kProducers; ++p) {
            threads_.emplace_back([this, &rt, targets, p] {
                const std::string sender = "p" + std::to_string(p);
                long seq = 0;
                while (!stop_.load(std::memory_order_relaxed)) {
                    for (const auto& to : targets)
                        if (!rt.send(to,
                                     Message{messages::kRecord, 1, sender, std::to_string(seq)}))
                            refused_ = true;
                    sent_[p] = ++seq;
                }
            });
        }
    }
    ~Producers() { stop(); }
    // Stops every producer; returns how many messages each sent to each target.
    std::vector<long> stop() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
        std::vector<long> sent;
        for (auto& s : sent_) sent.push_back(s.load());
        return sent;
    }
    bool refused() const { return refused_; }

private:
    std::atomic<bool> stop_{false}, refused_{false};
    std::atomic<long> sent_[kProducers] = {};
    std::vector<std::thread> threads_;
};

// Asserts that `module` saw every producer's sequence 0..sent-1 exactly once, in order.
void expect_every_sequence(const std::string& module, const std::vector<long>& sent) {
    std::map<std::string, std::vector<long>> by_sender;
    for (auto& e : events_of(module)) by_sender[e.sender].push_back(std::stol(e.payload));
    for (int p = 0; p < kProducers; ++p) {
        const auto& seqs = by_sender["p" + std::to_string(p)];
        ASSERT_EQ(static_cast<long>(seqs.size()), sent[p]) << module << " producer " << p;
        for (long i = 0; i < static_cast<long>(seqs.size()); ++i)
            ASSERT_EQ(seqs[i], i) << module << " producer " << p << " at position " << i;
    }
}

TEST_F(RuntimeTest, NothingLostDuplicatedOrReorderedAcrossReplacements) {
    constexpr int kReplacements = 200;
    // Producers outrun any consumer; a bounded queue makes them wait instead of building a
    // backlog that no quiescence limit could drain. Blocking is backpressure, not loss.
    config.queue_capacity = 2000;
    ASSERT_TRUE(rt().load("target", "libcounter_v2.so").ok());
    Producers producers(rt(), {"target"});
    int committed = 0;
    for (int i = 0; i < kReplacements; ++i) {
        auto report = rt().replace("target", i % 2 == 0 ? "libcounter_v3.so" : "libcounter_v2.so");
        EXPECT_EQ(report.outcome, Outcome::committed) << report.to_string();
        if (!report.ok()) break;
        ++committed;
    }
    const auto sent = producers.stop();
    ASSERT_EQ(committed, kReplacements);
    EXPECT_FALSE(producers.refused());
    long total = 0;
    for (auto s : sent) total += s;
    ASSERT_TRUE(probe::wait_count(static_cast<std::size_t>(total)));
    expect_every_sequence("target", sent);
    EXPECT_EQ(probe::get("target.count"), std::to_string(total));  // state carried every time
    EXPECT_EQ(rt().info("target")->version, "2");
    EXPECT_GT(total, 0);
    std::map<std::string, int> versions;
    for (auto& e : events_of("target")) ++versions[e.version];
    std::cout << "[ info ] " << total << " messages from " << kProducers << " producers across "
              << kReplacements << " replacements (v2: " << versions["2"]
              << ", v3: " << versions["3"] << ")\n";
}

// With a queue of a few messages, senders constantly wait for room in the swap buffer, which
// nobody serves until the swap ends; the swap must not wait for them in turn.
TEST_F(RuntimeTest, SendersWaitingOnAFullBufferDoNotStallTheSwap) {
    config.queue_capacity = 4;
    ASSERT_TRUE(rt().load("target", "libcounter_v2.so").ok());
    Producers producers(rt(), {"target"});
    for (int i = 0; i < 200; ++i) {
        auto report = rt().replace("target", i % 2 == 0 ? "libcounter_v3.so" : "libcounter_v2.so");
        ASSERT_TRUE(report.ok()) << report.to_string();
    }
    const auto sent = producers.stop();
    long total = 0;
    for (auto s : sent) total += s;
    ASSERT_TRUE(probe::wait_count(static_cast<std::size_t>(total)));
    expect_every_sequence("target", sent);
}

// The same guarantee for group transactions of 4 modules, every other one made to abort (one
// member goes to version 1, which cannot read the others' state schema).
TEST_F(RuntimeTest, NothingLostAcrossGroupTransactionsHalfOfThemAborted) {
    constexpr int kModules = 4;
    constexpr int kTransactions = 60;
    config.queue_capacity = 2000;
    std::vector<std::string> names;
    for (int m = 0; m < kModules; ++m) {
        names.push_back("g" + std::to_string(m));
        ASSERT_TRUE(rt().load(names.back(), "libcounter_v2.so").ok());
    }
    Producers producers(rt(), names);
    int committed = 0, aborted = 0;
    std::string next = "libcounter_v3.so";
    for (int i = 0; i < kTransactions; ++i) {
        std::vector<Change> changes;
        for (const auto& name : names) changes.push_back({name, next});
        const bool doomed = i % 2 == 1;
        if (doomed) changes[i % kModules].library = "libcounter_v1.so";
        auto report = rt().syn_replace(changes, i % 4 < 2 ? Mode::concurrent : Mode::sequential);
        EXPECT_EQ(report.outcome, doomed ? Outcome::aborted : Outcome::committed)
            << report.to_string();
        report.ok() ? ++committed : ++aborted;
        if (report.ok())
            next = next == "libcounter_v3.so" ? "libcounter_v2.so" : "libcounter_v3.so";
    }
    const auto sent = producers.stop();
    EXPECT_FALSE(producers.refused());
    long total = 0;
    for (auto s : sent) total += s;
    ASSERT_TRUE(probe::wait_count(static_cast<std::size_t>(total * kModules)));
    for (const auto& name : names) {
        expect_every_sequence(name, sent);
        EXPECT_EQ(probe::get(name + ".count"), std::to_string(total));
    }
    EXPECT_EQ(committed, kTransactions / 2);
    EXPECT_EQ(aborted, kTransactions / 2);
    std::cout << "[ info ] " << total * kModules << " messages across " << committed
              << " committed and " << aborted << " aborted group transactions\n";
}

}  // namespace
}  // namespace nonstop::test
