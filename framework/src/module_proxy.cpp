#include "nonstop/module_proxy.hpp"

#include <cstdio>
#include <thread>

#include <ace/OS_NS_sys_time.h>

#include "input_queue.hpp"
#include "module_task.hpp"
#include "nonstop/error.hpp"
#include "nonstop/version_repository.hpp"

namespace nonstop {

using detail::Clock;
using detail::InputQueue;

ModuleProxy::ModuleProxy(std::string name, std::size_t capacity)
    : name_(std::move(name)), capacity_(capacity) {}

ModuleProxy::~ModuleProxy() = default;

namespace {
std::size_t shard_of_this_thread() {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed);
    return shard;
}
}  // namespace

bool ModuleProxy::put(Message&& m) {
    ACE_Message_Block* block = InputQueue::wrap(std::move(m));
    auto& shard = shards_[shard_of_this_thread() % kShards];
    const ACE_Time_Value* wait = &ACE_Time_Value::zero;  // first try: no waiting
    ACE_Time_Value deadline;
    for (;;) {
        // The target and its generation's parity are one word, so the counter a sender stands
        // in always belongs to the queue it writes to: retarget() waits only for writers of
        // the old queue, never for one blocked on the (not yet served) new one.
        const std::uintptr_t target = target_.load();
        auto& inflight = shard.inflight[target & 1];
        inflight.fetch_add(1);
        if (target_.load() != target) {  // retargeted between the two loads: count again
            inflight.fetch_sub(1);
            continue;
        }
        auto* queue = reinterpret_cast<InputQueue*>(target & ~std::uintptr_t{1});
        const auto result = queue ? queue->put(block, wait) : InputQueue::Put::closed;
        if (result == InputQueue::Put::done && swapping_.load(std::memory_order_relaxed))
            note_buffered();
        inflight.fetch_sub(1);
        if (result == InputQueue::Put::done) return true;
        if (result == InputQueue::Put::closed) {
            InputQueue::discard(block);
            return false;
        }
        // Full: wait for room a slice at a time, uncounted in between, so that a swap never
        // waits longer than one slice for this sender. The message was not enqueued anywhere,
        // so trying the target of the moment keeps this sender's order.
        deadline = ACE_OS::gettimeofday() + ACE_Time_Value(0, 1000);
        wait = &deadline;
    }
}

void ModuleProxy::note_buffered() {
    if (buffered_.fetch_add(1, std::memory_order_acq_rel) == 0) {
        const auto now = Clock::now().time_since_epoch();
        first_buffered_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(),
                                 std::memory_order_release);
    }
}

std::chrono::steady_clock::time_point ModuleProxy::first_buffered() const {
    return Clock::time_point(std::chrono::nanoseconds(first_buffered_ns_.load()));
}

void ModuleProxy::retarget(std::shared_ptr<InputQueue> queue) {
    const std::uintptr_t parity = (target_.load() & 1) ^ 1;
    const std::uintptr_t old = target_.exchange(reinterpret_cast<std::uintptr_t>(queue.get()) | parity);
    // Every sender that may still write to the old queue counted itself under its parity.
    // They wait for room at most one slice (see put()), so this wait is short even when the
    // old queue is full and its consumer busy.
    for (auto& shard : shards_)
        while (shard.inflight[old & 1].load() != 0) std::this_thread::yield();
    queue_ = std::move(queue);
}

ModuleInfo ModuleProxy::info() const {
    std::lock_guard lock(mutex_);
    ModuleInfo i;
    i.name = name_;
    i.enabled = enabled_;
    i.in_transaction = in_transaction_;
    i.handled = handled_.load(std::memory_order_relaxed);
    i.handler_errors = errors_.load(std::memory_order_relaxed);
    if (queue_) i.queue_depth = queue_->size();
    if (current_) {
        i.kind = current_->library().kind();
        i.version = current_->library().version();
        i.library = current_->library().path();
        i.status = current_->status();
        if (in_transaction_) i.queue_depth += current_->queue_depth();
    }
    return i;
}

void ModuleProxy::enable() {
    std::lock_guard lock(mutex_);
    if (in_transaction_) throw Error("module '" + name_ + "' is in a transaction");
    if (!current_ || !queue_) throw Error("module '" + name_ + "' has no implementation");
    enabled_ = true;
    current_->set_active(*queue_);
}

void ModuleProxy::disable() {
    std::lock_guard lock(mutex_);
    if (in_transaction_) throw Error("module '" + name_ + "' is in a transaction");
    if (!current_ || !queue_) throw Error("module '" + name_ + "' has no implementation");
    enabled_ = false;
    current_->set_passive(*queue_);
}

bool ModuleProxy::enabled() const {
    std::lock_guard lock(mutex_);
    return enabled_;
}

ModuleProxy::Task ModuleProxy::current() const {
    std::lock_guard lock(mutex_);
    return current_;
}

void ModuleProxy::attach(Task task) {
    std::lock_guard lock(mutex_);
    current_ = std::move(task);
    enabled_ = true;
    in_transaction_ = true;  // until start()
    retarget(std::make_shared<InputQueue>(capacity_));
}

ModuleProxy::Vote ModuleProxy::prepare(std::chrono::milliseconds timeout, Intake intake) {
    Task old;
    std::uint64_t term;
    const auto begin = Clock::now();
    {
        std::lock_guard lock(mutex_);
        if (in_transaction_) throw Error("module '" + name_ + "' is already in a transaction");
        if (!current_ || !queue_) throw Error("module '" + name_ + "' has no implementation");
        in_transaction_ = true;
        was_enabled_ = enabled_;
        old = current_;
        buffered_.store(0);
        first_buffered_ns_.store(0);
        std::shared_ptr<InputQueue> drained = queue_;
        swapping_.store(intake == Intake::buffer);
        old->set_passive(*drained);
        retarget(intake == Intake::buffer ? std::make_shared<InputQueue>(capacity_) : nullptr);
        term_ = term = old->next_term();
        drained->put_terminate(term);
    }
    Vote vote;
    if (!old->wait_quiescent(term, begin + timeout)) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", timeout.count() / 1000.0);
        vote.reason = "module '" + name_ + "' did not reach quiescence within " + seconds +
                      " s (its handler is still busy)";
        vote.timed_out = true;
        return vote;
    }
    vote.quiescence = Clock::now() - begin;
    if (intake == Intake::refuse) {  // a removal: no successor needs the state
        vote.yes = true;
        return vote;
    }
    try {
        vote.state = old->checkpoint();
    } catch (const std::exception& e) {
        vote.reason = "module '" + name_ + "' failed to checkpoint its state: " + e.what();
        return vote;
    } catch (...) {
        vote.reason = "module '" + name_ + "' failed to checkpoint its state";
        return vote;
    }
    vote.yes = true;
    return vote;
}

std::string ModuleProxy::restore(detail::ModuleTask& fresh, const State& state) {
    try {
        fresh.restore(state);
    } catch (const std::exception& e) {
        return "module '" + name_ + "' version " + fresh.library().version() +
               " failed to restore the state of version " + current()->library().version() +
               ": " + e.what();
    } catch (...) {
        return "module '" + name_ + "' version " + fresh.library().version() +
               " failed to restore the checkpointed state";
    }
    return {};
}

ModuleProxy::Task ModuleProxy::swap(Task fresh) {
    Task old;
    {
        std::lock_guard lock(mutex_);
        old = std::exchange(current_, std::move(fresh));
        old->finish(term_);
    }
    return old;
}

void ModuleProxy::start() {
    std::lock_guard lock(mutex_);
    current_->start(queue_);
    enabled_ = true;
    swapping_.store(false);
    in_transaction_ = false;
}

void ModuleProxy::abort() {
    std::lock_guard lock(mutex_);
    if (!queue_) retarget(std::make_shared<InputQueue>(capacity_));  // reopen after refusing
    current_->resume(term_, queue_, was_enabled_);
    enabled_ = was_enabled_;
    swapping_.store(false);
    in_transaction_ = false;
}

ModuleProxy::Task ModuleProxy::retire() {
    Task old;
    {
        std::lock_guard lock(mutex_);
        old = std::move(current_);
        old->finish(term_);
    }
    old->join();
    return old;
}

}  // namespace nonstop
