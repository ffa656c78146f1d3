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
#include "module_host.hpp"
#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"

namespace nonstop::detail {

class Library;
using Clock = std::chrono::steady_clock;

/// What every version of one module has served, kept by its proxy and handed to each task.
struct alignas(64) ServiceCounters {
    std::atomic<std::uint64_t> handled{0};  // one writer at a time: the serving version
    std::atomic<std::uint64_t> errors{0};   // handle() or a hook threw
};

class ModuleTask : public ACE_Task<ACE_MT_SYNCH> {
public:
    /// Creates the instance through the library's factory (throws Error); no thread yet.
    ModuleTask(ModuleHost& host, std::string name, std::shared_ptr<Library> library,
               ServiceCounters& counters);
    /// Ends the thread if it still runs, destroys the instance, releases the library.
    ~ModuleTask() override;

    /// Starts the thread for transaction `transaction`; it runs initialize() and then waits to
    /// be started (term 0).
    void launch(std::uint64_t transaction);
    /// Blocks until initialize() has returned; throws Error with its failure.
    void wait_initialized();

    /// A fresh termination number for the next termination message, issued by `transaction`
    /// (the steps the loop takes at that message are attributed to it).
    std::uint64_t next_term(std::uint64_t transaction);
    /// Waits until the service loop has reached termination message `term` (quiescence).
    bool wait_quiescent(std::uint64_t term, Clock::time_point deadline);
    /// Parked at `term` after an aborted transaction: says so, and resumes at start().
    void hold(std::uint64_t transaction);
    /// Resumes the loop parked at `term`: serve `queue` next, active or passive.
    void resume(std::uint64_t term, std::shared_ptr<InputQueue> queue, bool enable,
                std::uint64_t transaction);
    /// The first start: runs the side effects initialize() asked for, in the caller's thread so
    /// they are in place when the transaction reports, then resumes at term 0.
    void start(std::shared_ptr<InputQueue> queue, std::uint64_t transaction);
    /// Decides that the loop ends at `term`: terminate() runs and the thread exits.
    void finish(std::uint64_t term);
    /// Waits for the thread to exit (after finish()).
    void join();

    /// Passive now: Context::send refuses at once; disable() runs in the module thread next.
    void set_passive(InputQueue& queue);
    void set_active(InputQueue& queue);
    bool passive() const { return passive_.load(std::memory_order_acquire); }

    /// put_state()/get_state(): only while the loop is parked (quiescent or not yet started),
    /// so never concurrently with handle(). Throw Error naming the module and the cause.
    State checkpoint();
    void restore(const State& s, const std::string& from_version);

    /// Side effects a not-yet-started implementation asks for (publish, subscribe, timer)
    /// wait until it starts, so an aborted replacement leaves none behind.
    void defer_or_run(std::function<void()> action);

    ModuleStatus status() const { return status_.load(std::memory_order_acquire); }
    const std::string& name() const { return name_; }
    const Library& library() const { return *library_; }
    const std::string& version() const;
    ModuleHost& host() { return host_; }
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
    void initialize();
    void serve_message(ACE_Message_Block* block);
    void trace(Step step);
    void trace(Step step, std::uint64_t transaction);
    template <class F>
    void call_hook(F&& hook);

    ModuleHost& host_;
    std::string name_;
    std::shared_ptr<Library> library_;
    Module* module_ = nullptr;
    Context context_;
    ServiceCounters& counters_;

    std::atomic<bool> passive_{true};
    std::atomic<ModuleStatus> status_{ModuleStatus::initializing};
    std::atomic<std::uint64_t> terms_issued_{0};
    // The transaction whose steps this task takes now: set with each launch and termination
    // number, read by the loop when it traces.
    std::atomic<std::uint64_t> transaction_{0};
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
