// The software upgrader (thesis 3.3.9, 3.7, 4.8.1, table 4.6): one per runtime; executes the
// commands of table 4.1 one at a time. It keeps the queue of commands, the history and the
// limits; each replace/load command runs as a Transaction.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nonstop/change.hpp"
#include "nonstop/store_records.hpp"
#include "nonstop/transaction_options.hpp"
#include "nonstop/transaction_report.hpp"
#include "release_ledger.hpp"
#include "release_store.hpp"
#include "transaction.hpp"

namespace nonstop::detail {

/// What to roll back and why (an operator's command, or a health rule that tripped).
struct RollbackRequest {
    std::string name;               // the latest release that replaced this module, or
    std::uint64_t transaction = 0;  // this one
    bool from_checkpoint = false;   // the older versions restart from their commit checkpoints
    std::string rule = "operator";
    std::string evidence;
    bool force = false;             // a newer version stuck in a handler is given up on
    bool only_provisional = false;  // a health rule: only while the release is provisional
};

class Upgrader {
public:
    explicit Upgrader(UpgraderParts parts);

    TransactionReport load(const std::string& name, const std::string& library,
                           const TransactionOptions& options = {});
    TransactionReport unload(const std::string& name, bool force = false);
    TransactionReport replace(const std::string& name, const std::string& library,
                              const TransactionOptions& options = {});
    TransactionReport enable(const std::string& name);
    TransactionReport disable(const std::string& name);
    TransactionReport syn_replace(const std::vector<Change>& changes, Mode mode,
                                  const TransactionOptions& options = {},
                                  std::function<std::string()> agree = {});
    TransactionReport syn_load(const std::vector<Change>& changes, Mode mode,
                               const TransactionOptions& options = {});
    TransactionReport syn_upgrade(const std::vector<Change>& changes, Mode mode,
                                  const TransactionOptions& options = {});
    TransactionReport syn_upgrade(const std::vector<Change>& replacements,
                                  const std::vector<Change>& additions, Mode mode,
                                  const TransactionOptions& options = {});
    TransactionReport set_timer(std::chrono::milliseconds limit);
    std::chrono::milliseconds timer() const {
        return std::chrono::milliseconds(timeout_ms_.load());
    }

    /// Commands waiting for the transaction in progress to end.
    std::size_t queued() const { return queued_.load(); }
    /// The latest `count` reports, oldest first (all kept ones when count is 0).
    std::vector<TransactionReport> history(std::size_t count) const;
    // --- Probation and rollback.
    void set_probation(std::chrono::milliseconds period);
    std::chrono::milliseconds probation() const {
        return std::chrono::milliseconds(probation_ms_.load());
    }
    /// Provisional release `transaction` (0: every one) becomes permanent; returns the ids.
    /// Throws Error when none is provisional.
    std::vector<std::uint64_t> accept(std::uint64_t transaction);
    /// Provisional release `transaction` becomes permanent if its probation is over.
    void expire(std::uint64_t transaction);
    /// Undoes a committed release by the two-phase commit (see RollbackRequest).
    TransactionReport rollback(const RollbackRequest& request);
    /// Replaces module `name` by a fresh instance of its own library, from the checkpoint its
    /// current instance takes now (the audit ladder's second step).
    TransactionReport restart(const std::string& name);
    const ReleaseLedger& ledger() const { return ledger_; }

    /// Removes every module, each after it has served its queue, within Config::
    /// shutdown_timeout each; a module stuck in a handler is removed by force and named on
    /// stderr (used at shutdown).
    void unload_all();

    /// Checkpoints of the serving modules (or of `name` only; throws Error when unknown),
    /// each taken in the module's own thread between two messages, saved to the release
    /// store in one write when there is one. No transaction runs meanwhile.
    std::vector<SavedCheckpoint> checkpoint(const std::string& name);
    /// At start: imports the previous run's crash records, discards a provisional transaction
    /// (the process died during its probation), and restarts the permanent release from the
    /// store: each module from its library, its digest verified, with its saved checkpoint and
    /// its enabled state. A module that cannot restart is an error for it alone.
    RestoreReport restore(const std::string& state_dir);

private:
    class Session;
    using Seeds = std::map<std::string, std::shared_ptr<const State>>;
    TransactionReport run(std::string command, const std::vector<Change>& replacements,
                          const std::vector<Change>& additions, Mode mode, bool late_additions,
                          const TransactionOptions& options, Seeds seeds = {},
                          std::function<std::string()> agree = {});
    void persist(const TransactionReport& report);
    Release release_header() const;
    void fit_threads();
    void settle(std::int64_t transaction);
    /// The store follows a release that leaves probation (permanent, or rolled back).
    void store_transition(std::uint64_t transaction, ReleaseState to, const std::string& why);
    std::string discard_interrupted(RestoreReport& out, const std::string& state_dir);
    void restore_module(const ReleaseModule& m, const std::map<std::string, SavedCheckpoint>& saved,
                        RestoreReport& out);
    TransactionReport toggle(const std::string& name, bool enable);
    TransactionReport remove(const std::string& name, std::chrono::milliseconds limit, bool force);
    bool force_removal(Session& s, TargetReport& t, std::shared_ptr<ModuleProxy> proxy);
    void end_removed(Session& s, TargetReport& t, std::shared_ptr<ModuleProxy> proxy,
                     ModuleProxy::Task old, std::uint64_t dropped);
    TransactionReport record(TransactionReport report);
    void keep_release(Session& s, const Transaction& transaction,
                      std::chrono::milliseconds probation);
    std::string prepare_rollback(const CommittedRelease& release, const RollbackRequest& request,
                                 Transaction& transaction, std::vector<Change>& changes);
    std::string rollback_options(const CommittedRelease& release, const RollbackRequest& request,
                                 Transaction& transaction);
    void announce(const TransactionReport& report, const char* state);

    UpgraderParts parts_;
    std::mutex transaction_mutex_;  // one transaction at a time
    std::atomic<long long> timeout_ms_;
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<long long> probation_ms_;
    ReleaseLedger ledger_;
    std::map<std::uint64_t, std::int64_t> stored_;  // provisional: runtime id → store id
    // The store may hold another release than what runs (nothing restored yet, a module left
    // out by restore(), a write that failed): the next release is written whole, after that
    // only what each command changed.
    std::atomic<bool> write_whole_{true};
    std::atomic<std::size_t> queued_{0};
    mutable std::mutex history_mutex_;
    std::deque<TransactionReport> history_;
};

}  // namespace nonstop::detail
