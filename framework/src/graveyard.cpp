#include "graveyard.hpp"

#include "version_repository.hpp"

namespace nonstop::detail {

void keep_to_exit(std::shared_ptr<void> what) {
    static std::mutex mutex;
    static auto* kept = new std::vector<std::shared_ptr<void>>();
    std::lock_guard lock(mutex);
    kept->push_back(std::move(what));
}

Graveyard::~Graveyard() {
    reap();
    std::lock_guard lock(mutex_);
    // Threads still inside module code: their task, library and proxy must outlive them, so
    // they are left to the end of the process on purpose.
    for (auto& grave : graves_) {
        grave.task->detach();
        keep_to_exit(std::move(grave.task));
        keep_to_exit(std::move(grave.keep));
    }
    graves_.clear();
}

bool Graveyard::dispose(Task task, std::shared_ptr<void> keep, std::chrono::milliseconds limit) {
    if (!task) return true;
    if (!task->abandoned()) {
        task->discard();
        if (task->wait_exited(Clock::now() + limit)) {
            task.reset();  // joins a thread that has ended
            return true;
        }
        task->abandon();
    }
    if (task->exited()) return true;
    bury(std::move(task), std::move(keep));
    return false;
}

void Graveyard::bury(Task task, std::shared_ptr<void> keep) {
    std::lock_guard lock(mutex_);
    graves_.push_back(Grave{std::move(task), std::move(keep), std::chrono::steady_clock::now()});
}

void Graveyard::reap() {
    std::vector<Grave> ended;
    {
        std::lock_guard lock(mutex_);
        for (auto it = graves_.begin(); it != graves_.end();) {
            if (it->task->exited()) {
                ended.push_back(std::move(*it));
                it = graves_.erase(it);
            } else {
                ++it;
            }
        }
    }
    ended.clear();  // outside the lock: joins and unmaps
}

std::vector<AbandonedInstance> Graveyard::list() const {
    std::lock_guard lock(mutex_);
    std::vector<AbandonedInstance> out;
    for (const auto& grave : graves_) {
        const char* in = "";
        const auto busy = grave.task->busy_for(&in);
        out.push_back(
            {grave.task->name(), grave.task->version(), grave.task->library().path(), in, busy});
    }
    return out;
}

}  // namespace nonstop::detail
