#include "timer_service.hpp"

#include <vector>

namespace nonstop::detail {

TimerService::TimerService(Deliver deliver)
    : deliver_(std::move(deliver)), thread_([this] { run(); }) {}

TimerService::~TimerService() { stop(); }

void TimerService::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

// Only a new timer can make the thread's next wake-up earlier: a cancelled one at most wakes it
// once for nothing, so cancelling (every removal does) does not wake it.
void TimerService::set(const std::string& name, std::chrono::milliseconds period) {
    {
        std::lock_guard lock(mutex_);
        if (period.count() <= 0) {
            entries_.erase(name);
            return;
        }
        entries_[name] = Entry{period, std::chrono::steady_clock::now() + period};
    }
    cv_.notify_all();
}

void TimerService::run() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
        auto now = std::chrono::steady_clock::now();
        auto next = now + std::chrono::hours(1);
        std::vector<std::string> due;
        for (auto& [name, entry] : entries_) {
            if (entry.next <= now) {
                due.push_back(name);
                // Catch up without a burst after a stall: the next tick is one period from now.
                entry.next = std::max(entry.next + entry.period, now);
            }
            next = std::min(next, entry.next);
        }
        if (!due.empty()) {
            lock.unlock();
            for (const auto& name : due)
                deliver_(name);  // never waits: a full queue drops the tick
            lock.lock();
            continue;
        }
        cv_.wait_until(lock, next);
    }
}

}  // namespace nonstop::detail
