// Module threads kept for reuse (Config::module_thread_keep): a module instance still has a
// thread of its own for its whole life, but the thread it runs on may have served an instance
// before, and waits, parked, for the next one once its instance has ended. Loading, replacing
// and removing a module then cost a wake-up instead of a thread's creation and its end.
#pragma once

#include <pthread.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>

namespace nonstop::detail {

class ThreadPool {
public:
    /// Threads of `stack_size` bytes (0: the platform's default), each kept parked for `keep`
    /// after its job, at most `max_idle` of them at a time.
    ThreadPool(std::size_t stack_size, std::chrono::milliseconds keep, std::size_t max_idle);
    /// Ends the parked threads and waits for them; a thread still in a job (module code that
    /// never returned) ends when it does, without touching the pool.
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    /// What a job's `done` is handed: the thread to join when it ends instead of parking, so
    /// that its thread-specific data's destructors have run once it is joined; else nothing.
    using Done = std::function<void(std::optional<pthread_t> ending)>;

    /// Runs `job` on a parked thread, or on a new one; false when no thread could be started.
    /// `done` runs on that thread once `job` has returned (or ended the thread) and the thread
    /// is parked again, so that whoever `done` tells finds it parked for the next job. Before
    /// it parks, the thread is given back what module code may have changed in it (signal mask
    /// and alternate stack, name, scheduling, nice value, affinity, floating-point environment,
    /// locale, cancellation); a thread left with thread-specific data set during the job, or
    /// whose state cannot be given back, ends instead.
    bool run(std::function<void()> job, Done done);
    /// Threads parked now, and threads started since the pool was made.
    std::size_t parked() const;
    std::size_t started() const;

private:
    struct State;
    struct Start;  // what a new thread is handed
    static void* work(void* start);
    std::shared_ptr<State> state_;
};

}  // namespace nonstop::detail
