// Periodic timers per module name (Context::schedule_timer): one thread for the whole runtime,
// delivering kTimerTick messages through the module's proxy, so a tick that falls into a swap
// is buffered like any other message.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace nonstop::detail {

class TimerService {
public:
    using Deliver = std::function<void(const std::string& name)>;
    explicit TimerService(Deliver deliver);
    ~TimerService();
    /// Ticks `name` every `period` from now on; zero cancels.
    void set(const std::string& name, std::chrono::milliseconds period);
    void cancel(const std::string& name) { set(name, std::chrono::milliseconds{0}); }
    /// Ends the thread (the destructor does too).
    void stop();

private:
    void run();
    struct Entry {
        std::chrono::milliseconds period;
        std::chrono::steady_clock::time_point next;
    };
    Deliver deliver_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::map<std::string, Entry> entries_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace nonstop::detail
