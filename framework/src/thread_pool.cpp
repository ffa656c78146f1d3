#include "thread_pool.hpp"

#include <fenv.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

namespace nonstop::detail {

namespace {
// One parked thread: it waits on its own condition, so a job wakes exactly the thread given it.
struct Slot {
    std::condition_variable cv;
    std::function<void()> job;
    ThreadPool::Done done;
};

// Calls a job's `done` once: when the thread has parked (handing nothing), or when it ends
// (handing the thread to join; also by unwinding, when module code ends the thread).
class Finish {
public:
    explicit Finish(ThreadPool::Done done) : done_(std::move(done)) {}
    ~Finish() { call(pthread_self()); }
    void call(std::optional<pthread_t> ending) {
        if (!done_) return;
        auto done = std::exchange(done_, nullptr);
        done(ending);
    }

private:
    ThreadPool::Done done_;
};

// What a thread carried when it started, given back to it after each job: module code may
// change any of it and leave it so, and the next instance must find the thread as a new one.
class Baseline {
public:
    Baseline() {
        pthread_sigmask(SIG_SETMASK, nullptr, &mask_);
        sigaltstack(nullptr, &alternate_);
        prctl(PR_GET_NAME, name_);
        // The kernel's values: pthread_getschedparam answers from glibc's copy, which a
        // sched_setscheduler() in module code would leave stale.
        policy_ = sched_getscheduler(0);
        sched_getparam(0, &param_);
        errno = 0;
        nice_ = getpriority(PRIO_PROCESS, 0);
        has_nice_ = errno == 0;
        has_affinity_ = sched_getaffinity(0, sizeof affinity_, &affinity_) == 0;
        fegetenv(&fenv_);
        for (pthread_key_t key = 0; key < PTHREAD_KEYS_MAX; ++key)
            keys_[key] = pthread_getspecific(key) != nullptr;
    }

    // False when the thread cannot serve another instance: it holds thread-specific data set
    // since it started (whose destructor may be in a library about to be closed: only the
    // thread's end runs it), or a setting could not be given back (e.g. a nice value lowered
    // without the privilege to raise it again). A cancellation that module code left pending
    // (requested while it had cancellation disabled) ends the thread here, by unwinding.
    // Everything is given back first, also to a thread that then ends: its end must not run
    // on an alternate stack in a library about to be closed.
    bool restore() const {
        pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, nullptr);
        pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, nullptr);
        bool restored = restore_alternate_stack();
        pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
        prctl(PR_SET_NAME, name_);
        fesetenv(&fenv_);
        uselocale(LC_GLOBAL_LOCALE);
        restored = restore_scheduling() && restored;
        pthread_testcancel();
        for (pthread_key_t key = 0; key < PTHREAD_KEYS_MAX && restored; ++key)
            if (!keys_[key] && pthread_getspecific(key) != nullptr) restored = false;
        return restored;
    }

private:
    // The one the thread started with (a sanitizer installs one on every thread), not one in
    // module memory that may be unmapped by the next signal.
    bool restore_alternate_stack() const {
        stack_t now{};
        if (sigaltstack(nullptr, &now) != 0) return false;
        const bool was_off = (alternate_.ss_flags & SS_DISABLE) != 0;
        const bool is_off = (now.ss_flags & SS_DISABLE) != 0;
        if (was_off == is_off &&
            (was_off || (now.ss_sp == alternate_.ss_sp && now.ss_size == alternate_.ss_size)))
            return true;
        stack_t wanted = alternate_;
        wanted.ss_flags = was_off ? SS_DISABLE : 0;
        return sigaltstack(&wanted, nullptr) == 0;
    }

    bool restore_scheduling() const {
        sched_param param{};
        const int policy = sched_getscheduler(0);
        if (policy < 0 || sched_getparam(0, &param) != 0) return false;
        // pthread_setschedparam, so that glibc's copy is right again too.
        if ((policy != policy_ || param.sched_priority != param_.sched_priority) &&
            pthread_setschedparam(pthread_self(), policy_, &param_) != 0)
            return false;
        if (has_nice_) {
            errno = 0;
            const int nice = getpriority(PRIO_PROCESS, 0);
            if (errno != 0 || (nice != nice_ && setpriority(PRIO_PROCESS, 0, nice_) != 0))
                return false;
        }
        if (has_affinity_) {
            cpu_set_t now;
            if (sched_getaffinity(0, sizeof now, &now) != 0) return false;
            if (!CPU_EQUAL(&now, &affinity_) &&
                sched_setaffinity(0, sizeof affinity_, &affinity_) != 0)
                return false;
        }
        return true;
    }

    sigset_t mask_;
    stack_t alternate_{};
    char name_[16] = {};
    int policy_ = 0;
    sched_param param_{};
    int nice_ = 0;
    bool has_nice_ = false;
    cpu_set_t affinity_;
    bool has_affinity_ = false;
    fenv_t fenv_;
    std::bitset<PTHREAD_KEYS_MAX> keys_;
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
    std::function<void()> job;
    Done done;
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

bool ThreadPool::run(std::function<void()> job, Done done) {
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
    // Joinable: a thread that ends after a job is joined by whoever its `done` tells; one that
    // ends parked detaches itself.
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
    Done done = std::move(start->done);
    start.reset();
    const Baseline baseline;
    for (;;) {
        Finish finish(std::move(done));  // this job's, whatever happens to `done` next
        job();
        job = nullptr;
        const bool clean = baseline.restore();
        std::unique_lock lock(state->mutex);
        // Not kept: `finish` hands this thread to its joiner after the lock is released.
        if (!clean || state->stopping || state->idle.size() >= state->max_idle) return nullptr;
        Slot slot;
        state->idle.push_back(&slot);
        lock.unlock();
        finish.call(std::nullopt);  // parked (a job given meanwhile waits in the slot)
        lock.lock();
        slot.cv.wait_for(lock, state->keep, [&] { return slot.job || state->stopping; });
        if (!slot.job) {  // not wanted within `keep`, or the pool ends: this thread ends
            state->idle.erase(std::find(state->idle.begin(), state->idle.end(), &slot));
            state->left.notify_all();
            pthread_detach(pthread_self());  // no job, so no joiner
            return nullptr;
        }
        job = std::move(slot.job);
        done = std::move(slot.done);
    }
}

}  // namespace nonstop::detail
