// The object a host server embeds: owns one of each service and is the process's access point
// to them (the thesis's singletons, as one object that tests can also build on their own).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <shared_mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nonstop/config.hpp"
#include "nonstop/event_manager.hpp"
#include "nonstop/lifecycle_event.hpp"
#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"
#include "nonstop/name_service.hpp"
#include "nonstop/transaction_report.hpp"
#include "nonstop/upgrader.hpp"
#include "nonstop/version_repository.hpp"

namespace nonstop {

namespace detail {
class TimerService;
}

class Runtime {
public:
    explicit Runtime(Config config = {});
    /// Removes every module (each serves its queue first) and stops the timers.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// The process-wide runtime, built with the default Config (and NONSTOP_MODULE_PATH) on
    /// first use.
    static Runtime& instance();

    NameService& names() { return names_; }
    EventManager& events() { return events_; }
    VersionRepository& libraries() { return libraries_; }
    Upgrader& upgrader() { return upgrader_; }
    const Config& config() const { return config_; }
    detail::TimerService& timers() { return *timers_; }

    // Host-side operations; each returns the upgrader's report.
    TransactionReport load(const std::string& name, const std::string& library) {
        return upgrader_.load(name, library);
    }
    TransactionReport unload(const std::string& name) { return upgrader_.unload(name); }
    TransactionReport replace(const std::string& name, const std::string& library) {
        return upgrader_.replace(name, library);
    }
    TransactionReport enable(const std::string& name) { return upgrader_.enable(name); }
    TransactionReport disable(const std::string& name) { return upgrader_.disable(name); }

    /// Sends a message from host code; its sender is "host" unless set. False: unknown name.
    bool send(std::string_view to, Message m);
    /// Every module, sorted by name.
    std::vector<ModuleInfo> modules() const;
    /// One module; empty if the name is unknown.
    std::optional<ModuleInfo> info(std::string_view name) const;

    /// Calls `observer` for every lifecycle step of every module, in the thread that takes the
    /// step (keep it short; it must not call observe/unobserve). The same steps are published
    /// on the event manager as ("upgrader", "lifecycle"), payload "TRANSACTION MODULE VERSION
    /// STEP". Returns a token for unobserve().
    std::uint64_t observe(std::function<void(const LifecycleEvent&)> observer);
    /// Removes an observer; once it returns, the observer is not running and will not run.
    void unobserve(std::uint64_t token);
    /// Reports one step (used by the framework).
    void trace(const std::string& module, const std::string& version, const std::string& step);
    /// The transaction whose steps trace() attributes; set by the upgrader.
    void set_current_transaction(std::uint64_t id) { current_transaction_ = id; }

private:
    Config config_;
    std::shared_mutex observers_mutex_;
    std::map<std::uint64_t, std::function<void(const LifecycleEvent&)>> observers_;
    std::uint64_t next_observer_ = 1;
    std::atomic<std::uint64_t> current_transaction_{0};
    NameService names_;
    EventManager events_;
    VersionRepository libraries_;
    std::unique_ptr<detail::TimerService> timers_;
    Upgrader upgrader_;
};

}  // namespace nonstop
