#include "thread_pool.hpp"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace nonstop::detail {

namespace {
// One parked thread: it waits on its own condition, so a job wakes exactly the thread given it.
struct Slot {
    std::condition_variable cv;
    std::function<void()> job, done;
};

// Calls a job's `done` once: when the thread has parked, or when it ends (also by unwinding,
// when module code ends the thread).
class Finish {
public:
    explicit Finish(std::function<void()>& done) : done_(done) {}
    ~Finish() { call(); }
    void call() {
        if (!done_) return;
        auto done = std::exchange(done_, nullptr);
        done();
    }

private:
    std::function<void()>& done_;
};
}  // namespace

struct ThreadPool::State {
    std::size_t stack_size;
    std::chrono::milliseconds keep;
    std::size_t max_idle;
    mutable std::mutex mutex;
    std::condition_variable left;  // a parked thread has gone (the destructor waits for all)
    std::vector<Slot*> idle;       // the most recently parked last: reused first, its stack warm
    std::size_t started = 0;
    bool stopping = false;
};

struct ThreadPool::Start {
    std::shared_ptr<State> state;
    std::function<void()> job, done;
};

ThreadPool::ThreadPool(std::size_t stack_size, std::chrono::milliseconds keep, std::size_t max_idle)
    : state_(std::make_shared<State>()) {
    state_->stack_size = stack_size;
    state_->keep = keep;
    state_->max_idle = max_idle;
}

ThreadPool::~ThreadPool() {
    std::unique_lock lock(state_->mutex);
    state_->stopping = true;
    for (Slot* slot : state_->idle) slot->cv.notify_one();
    state_->left.wait(lock, [&] { return state_->idle.empty(); });
}

bool ThreadPool::run(std::function<void()> job, std::function<void()> done) {
    {
        std::lock_guard lock(state_->mutex);
        if (!state_->idle.empty()) {
            Slot* slot = state_->idle.back();
            state_->idle.pop_back();
            slot->job = std::move(job);
            slot->done = std::move(done);
            // Under the lock: the slot lives on its thread's stack, which runs the job and
            // leaves the slot as soon as it sees it.
            slot->cv.notify_one();
            return true;
        }
    }
    auto* start = new Start{state_, std::move(job), std::move(done)};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (state_->stack_size != 0) pthread_attr_setstacksize(&attr, state_->stack_size);
    pthread_t thread;
    const int error = pthread_create(&thread, &attr, &ThreadPool::work, start);
    pthread_attr_destroy(&attr);
    if (error != 0) {
        delete start;
        return false;
    }
    std::lock_guard lock(state_->mutex);
    ++state_->started;
    return true;
}

std::size_t ThreadPool::parked() const {
    std::lock_guard lock(state_->mutex);
    return state_->idle.size();
}

std::size_t ThreadPool::started() const {
    std::lock_guard lock(state_->mutex);
    return state_->started;
}

void* ThreadPool::work(void* arg) {
    std::unique_ptr<Start> start(static_cast<Start*>(arg));
    const std::shared_ptr<State> state = std::move(start->state);
    std::function<void()> job = std::move(start->job);
    std::function<void()> done = std::move(start->done);
    start.reset();
    for (;;) {
        Finish finish(done);
        job();
        job = nullptr;
        std::unique_lock lock(state->mutex);
        // Not kept: `finish` tells of the end after the lock is released.
        if (state->stopping || state->idle.size() >= state->max_idle) return nullptr;
        Slot slot;
        state->idle.push_back(&slot);
        lock.unlock();
        finish.call();  // parked (a job given meanwhile waits in the slot)
        lock.lock();
        slot.cv.wait_for(lock, state->keep, [&] { return slot.job || state->stopping; });
        if (!slot.job) {  // not wanted within `keep`, or the pool ends: this thread ends
            state->idle.erase(std::find(state->idle.begin(), state->idle.end(), &slot));
            state->left.notify_all();
            return nullptr;
        }
        job = std::move(slot.job);
        done = std::move(slot.done);
    }
}

}  // namespace nonstop::detail
