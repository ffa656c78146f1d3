// The software upgrader (thesis 3.3.9, 3.7, 4.8.1, table 4.6): one per runtime; executes the
// commands of table 4.1 one at a time. It keeps the queue of commands, the history and the
// limits; each replace/load command runs as a Transaction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "nonstop/change.hpp"
#include "nonstop/transaction_report.hpp"
#include "transaction.hpp"

namespace nonstop::detail {

class Upgrader {
public:
    explicit Upgrader(UpgraderParts parts);

    TransactionReport load(const std::string& name, const std::string& library);
    TransactionReport unload(const std::string& name, bool force = false);
    TransactionReport replace(const std::string& name, const std::string& library,
                              bool force = false);
    TransactionReport enable(const std::string& name);
    TransactionReport disable(const std::string& name);
    TransactionReport syn_replace(const std::vector<Change>& changes, Mode mode,
                                  std::function<std::string()> agree = {});
    TransactionReport syn_load(const std::vector<Change>& changes, Mode mode);
    TransactionReport syn_upgrade(const std::vector<Change>& changes, Mode mode);
    TransactionReport syn_upgrade(const std::vector<Change>& replacements,
                                  const std::vector<Change>& additions, Mode mode);
    TransactionReport set_timer(std::chrono::milliseconds limit);
    std::chrono::milliseconds timer() const {
        return std::chrono::milliseconds(timeout_ms_.load());
    }

    /// Commands waiting for the transaction in progress to end.
    std::size_t queued() const { return queued_.load(); }
    /// The latest `count` reports, oldest first (all kept ones when count is 0).
    std::vector<TransactionReport> history(std::size_t count) const;
    /// Removes every module, each after it has served its queue, within Config::
    /// shutdown_timeout each; a module stuck in a handler is removed by force and named on
    /// stderr (used at shutdown).
    void unload_all();

private:
    class Session;
    TransactionReport run(std::string command, const std::vector<Change>& replacements,
                          const std::vector<Change>& additions, Mode mode, bool late_additions,
                          bool force = false, std::function<std::string()> agree = {});
    TransactionReport toggle(const std::string& name, bool enable);
    TransactionReport remove(const std::string& name, std::chrono::milliseconds limit, bool force);
    bool force_removal(Session& s, TargetReport& t, std::shared_ptr<ModuleProxy> proxy);
    void end_removed(Session& s, TargetReport& t, std::shared_ptr<ModuleProxy> proxy,
                     ModuleProxy::Task old, std::uint64_t dropped);
    TransactionReport record(TransactionReport report);
    void announce(const TransactionReport& report, const char* state);

    UpgraderParts parts_;
    std::mutex transaction_mutex_;  // one transaction at a time
    std::atomic<long long> timeout_ms_;
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<std::size_t> queued_{0};
    mutable std::mutex history_mutex_;
    std::deque<TransactionReport> history_;
};

}  // namespace nonstop::detail
