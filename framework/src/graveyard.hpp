// Module instances the framework gave up on: a thread that did not come back from module code
// within its limit cannot be killed, so its task (and with it the library its code runs from,
// and the proxy whose counters it writes) is kept here until the thread ends on its own.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "module_task.hpp"
#include "nonstop/module_info.hpp"

namespace nonstop::detail {

/// Keeps `what` reachable until the process ends (a thread left inside module code may still use
/// it; kept in a static so that leak checkers do not count it lost).
void keep_to_exit(std::shared_ptr<void> what);

class Graveyard {
public:
    using Task = std::shared_ptr<ModuleTask>;
    ~Graveyard();

    /// Ends `task` (told to finish, or waiting with nothing decided): waits up to `limit` for
    /// its thread to exit, then destroys it; past the limit, or when it was abandoned already,
    /// keeps it here with `keep` (what its thread still uses). True when it ended.
    bool dispose(Task task, std::shared_ptr<void> keep, std::chrono::milliseconds limit);
    /// Keeps an abandoned task until its thread exits.
    void bury(Task task, std::shared_ptr<void> keep);
    /// Destroys the kept tasks whose thread has exited (their libraries unmap).
    void reap();
    /// The kept instances.
    std::vector<AbandonedInstance> list() const;

private:
    struct Grave {
        Task task;
        std::shared_ptr<void> keep;
        std::chrono::steady_clock::time_point since;
    };
    mutable std::mutex mutex_;
    std::vector<Grave> graves_;
};

}  // namespace nonstop::detail
