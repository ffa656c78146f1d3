// The health monitor (seeds 000 and 002): watches every provisional release with the health
// rules, ends probations, runs the modules' audits and climbs the escalation ladder. It asks
// the upgrader for a rollback, a restart or a disable, and never swaps by itself. One thread
// per runtime.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "nonstop/config.hpp"
#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"

namespace nonstop::detail {

class EventManager;
class NameService;
class Upgrader;
struct CommittedRelease;
struct ReleaseTarget;

class Health {
public:
    /// Starts the monitor's thread; every part given outlives it.
    Health(NameService& names, EventManager& events, Upgrader& upgrader, const Config& config);
    ~Health();
    Health(const Health&) = delete;
    Health& operator=(const Health&) = delete;

    /// Ends the thread, after the rollback or audit step it may be taking.
    void stop();
    /// Adds the monitor's view of a module (probation, latest audit, ladder) to its snapshot.
    void describe(ModuleInfo& info) const;

private:
    using Clock = std::chrono::steady_clock;
    struct Trip {
        std::string rule;
        std::string evidence;
    };
    struct AuditRecord {
        bool audited = false;
        AuditResult result;
        std::chrono::system_clock::time_point time{};
        Clock::time_point at{};
        Clock::time_point next{};
        std::uint32_t failures = 0;
        std::string step;
    };
    struct Progress {  // the idle rule: served count when input was last seen waiting
        std::uint64_t served = 0;
        Clock::time_point since{};
    };

    void run();
    void watch(const CommittedRelease& release);
    std::optional<Trip> tripped(const CommittedRelease& release, const ReleaseTarget& target);
    std::optional<Trip> idle(const std::string& name, std::uint64_t served, std::size_t queued,
                             const std::string& who);
    void roll_back(const CommittedRelease& release, const Trip& trip);
    void audit_due();
    void climb(const std::string& name, const std::string& version, const AuditResult& result);
    const char* next_step(const std::string& name, std::uint32_t failures,
                          const std::string& last) const;
    void set_step(const std::string& name, const std::string& step);
    void disable(const std::string& name, const std::string& version, const std::string& evidence);
    void publish(const char* event, const std::string& payload);

    NameService& names_;
    EventManager& events_;
    Upgrader& upgrader_;
    const Config& config_;

    mutable std::mutex mutex_;  // audits_; progress_ and given_up_ are the thread's own
    std::unordered_map<std::string, AuditRecord> audits_;
    std::map<std::string, Progress> progress_;
    std::set<std::uint64_t> given_up_;  // releases whose rollback failed
    Clock::time_point next_sweep_{};    // audit_due(): the earliest due audit at the last sweep
    std::size_t swept_count_ = 0;       // and how many modules it saw
    bool stop_ = false;
    std::condition_variable cv_;
    std::thread thread_;
};

}  // namespace nonstop::detail
