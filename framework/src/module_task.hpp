// One module implementation running as an ACE task: its thread, its service loop, its states
// (thesis figure 4.14). The framework owns the loop; the module only sees the Module calls.
#pragma once

#include <ace/Task.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "input_queue.hpp"
#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"

namespace nonstop {
class Library;
class ModuleProxy;
class Runtime;
}  // namespace nonstop

namespace nonstop::detail {

using Clock = std::chrono::steady_clock;

class ModuleTask : public ACE_Task<ACE_MT_SYNCH> {
public:
    /// Creates the instance through the library's factory (throws Error); no thread yet.
    ModuleTask(Runtime& runtime, ModuleProxy& proxy, std::shared_ptr<Library> library);
    /// Ends the thread if it still runs, destroys the instance, releases the library.
    ~ModuleTask() override;

    /// Starts the thread, which runs initialize() and then waits to be started (term 0).
    void launch();
    /// Blocks until initialize() has returned; its error text, empty on success.
    std::string wait_initialized();

    /// A fresh termination number for the next termination message of this task.
    std::uint64_t next_term() { return ++terms_issued_; }
    /// Waits until the service loop has reached termination message `term` (quiescence).
    bool wait_quiescent(std::uint64_t term, Clock::time_point deadline);
    /// Decides what the loop does at `term` (0: the start): serve `queue` next, active or
    /// passive. Applied at once if the loop waits there, or when it gets there.
    void resume(std::uint64_t term, std::shared_ptr<InputQueue> queue, bool enable);
    /// The first start: runs the side effects initialize() asked for, in the caller's thread so
    /// they are in place when the transaction reports, then resumes at term 0.
    void start(std::shared_ptr<InputQueue> queue);
    /// Decides that the loop ends at `term`: terminate() runs and the thread exits.
    void finish(std::uint64_t term);
    /// Waits for the thread to exit (after finish()).
    void join();

    /// Passive now: Context::send refuses at once; disable() runs in the module thread next.
    void set_passive(InputQueue& queue);
    void set_active(InputQueue& queue);
    bool passive() const { return passive_.load(std::memory_order_acquire); }

    /// put_state()/get_state(): only while the loop is parked (quiescent or not yet started),
    /// so never concurrently with handle(). Exceptions propagate.
    State checkpoint() { return module_->put_state(); }
    void restore(const State& s) { module_->get_state(s); }

    /// Side effects a not-yet-started implementation asks for (publish, subscribe, timer)
    /// wait until it starts, so an aborted replacement leaves none behind.
    void defer_or_run(std::function<void()> action);

    ModuleStatus status() const { return status_.load(std::memory_order_acquire); }
    const std::string& name() const { return name_; }
    const Library& library() const { return *library_; }
    Runtime& runtime() { return runtime_; }
    Context& context() { return context_; }
    std::size_t queue_depth();
    /// Waits until the first message after the latest resume is taken from the queue, and
    /// returns when that was; empty if it did not happen by `deadline`.
    std::optional<Clock::time_point> wait_first_served(Clock::time_point deadline);

    int svc() override;
    /// The task whose thread is calling, or null outside module threads: the upgrader refuses
    /// to make a module wait for its own quiescence from inside its own handler.
    static const ModuleTask* calling();

private:
    struct Decision {
        bool finish = false;
        std::shared_ptr<InputQueue> queue;
        bool enable = false;
    };
    std::uint64_t serve(InputQueue& queue);
    void trace(const char* step);
    template <class F>
    void call_hook(F&& hook);

    Runtime& runtime_;
    std::string name_;
    std::shared_ptr<Library> library_;
    Module* module_ = nullptr;
    Context context_;
    std::atomic<std::uint64_t>& handled_;
    std::atomic<std::uint64_t>& errors_;

    std::atomic<bool> passive_{true};
    std::atomic<ModuleStatus> status_{ModuleStatus::initializing};
    std::atomic<std::uint64_t> terms_issued_{0};
    bool awaiting_first_ = false;  // loop thread only

    std::mutex mutex_;
    std::condition_variable cv_;
    bool launched_ = false;
    bool initialized_ = false;
    bool exited_ = false;
    std::string init_error_;
    std::uint64_t reached_term_ = 0;
    std::map<std::uint64_t, Decision> decisions_;
    std::shared_ptr<InputQueue> queue_;
    bool started_ = false;
    std::vector<std::function<void()>> deferred_;
    Clock::time_point first_served_{};
    bool first_served_set_ = false;
};

}  // namespace nonstop::detail
