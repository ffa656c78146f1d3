// The software upgrader (thesis 3.3.9, 3.7, 4.8.1, table 4.6): one per runtime; executes the
// commands of table 4.1 one transaction at a time, as coordinator of the two-phase commit and
// master of one slave thread per target.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "nonstop/transaction_report.hpp"

namespace nonstop {

class Runtime;

class Upgrader {
public:
    enum class Mode { concurrent, sequential };
    /// One module of a group command: its name and the library of its new version.
    struct Change {
        std::string name;
        std::string library;
    };

    explicit Upgrader(Runtime& runtime);

    /// Adds a module (Load).
    TransactionReport load(const std::string& name, const std::string& library);
    /// Removes a module once it has served everything accepted (Unload).
    TransactionReport unload(const std::string& name);
    /// Replaces a module's implementation, state and queue carried over (Replace).
    TransactionReport replace(const std::string& name, const std::string& library);
    /// Lets a module initiate requests again (Enable).
    TransactionReport enable(const std::string& name);
    /// Stops a module from initiating requests; it still serves its queue (Disable).
    TransactionReport disable(const std::string& name);
    /// Replaces a group atomically: all new versions or none (Syn_Replace).
    TransactionReport syn_replace(const std::vector<Change>& changes, Mode mode = Mode::concurrent);
    /// Adds a group atomically; they start together (Syn_Load).
    TransactionReport syn_load(const std::vector<Change>& changes, Mode mode = Mode::concurrent);
    /// Replaces the named modules that exist and adds the others, in one transaction ordered as
    /// thesis figure 4.12: additions are loaded once every replaced module has voted yes, and
    /// everything starts together (Syn_Upgrade).
    TransactionReport syn_upgrade(const std::vector<Change>& changes, Mode mode = Mode::concurrent);
    /// The same with the roles stated: a listed addition whose name exists is rejected.
    TransactionReport syn_upgrade(const std::vector<Change>& replacements,
                                  const std::vector<Change>& additions, Mode mode);
    /// The time limit for reaching quiescence (SetTimer).
    TransactionReport set_timer(std::chrono::milliseconds limit);
    std::chrono::milliseconds timer() const { return std::chrono::milliseconds(timeout_ms_.load()); }

    /// Commands waiting for the transaction in progress to end.
    std::size_t queued() const { return queued_.load(); }
    /// The latest `count` reports, oldest first (all kept ones when count is 0).
    std::vector<TransactionReport> history(std::size_t count = 0) const;
    /// Removes every module, each after it has served its queue (used at shutdown).
    void unload_all();

private:
    struct Target;
    TransactionReport run(std::string command, const std::vector<Change>& replacements,
                          const std::vector<Change>& additions, Mode mode, bool late_additions);
    class Session;
    TransactionReport toggle(const std::string& name, bool enable);
    TransactionReport remove(const std::string& name, std::chrono::milliseconds limit);
    TransactionReport record(TransactionReport report);
    void announce(const TransactionReport& report, const std::string& state);

    Runtime& runtime_;
    std::mutex transaction_mutex_;  // one transaction at a time
    std::atomic<long long> timeout_ms_;
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<std::size_t> queued_{0};
    mutable std::mutex history_mutex_;
    std::deque<TransactionReport> history_;
};

}  // namespace nonstop
