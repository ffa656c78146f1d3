#include "module_proxy.hpp"

#include <cstdio>
#include <thread>

#include <ace/OS_NS_sys_time.h>

#include "input_queue.hpp"
#include "send_error.hpp"
#include "version_repository.hpp"

namespace nonstop::detail {

const char* to_string(ModuleProxy::Phase phase) {
    switch (phase) {
        case ModuleProxy::Phase::detached: return "detached";
        case ModuleProxy::Phase::attached: return "attached";
        case ModuleProxy::Phase::serving: return "serving";
        case ModuleProxy::Phase::draining: return "draining";
        case ModuleProxy::Phase::swapped: return "swapped";
        case ModuleProxy::Phase::aborted: return "aborted";
        case ModuleProxy::Phase::retired: return "retired";
    }
    return "?";
}

ModuleProxy::ModuleProxy(std::string name, const Config& limits, ModuleHost& host)
    : name_(std::move(name)),
      limits_(limits),
      unit_(InputQueue::unit(limits.queue_capacity, limits.queue_capacity_bytes)),
      host_(host) {}

std::shared_ptr<InputQueue> ModuleProxy::new_queue() const {
    return std::make_shared<InputQueue>(limits_.queue_capacity_bytes);
}

ModuleProxy::~ModuleProxy() = default;

namespace {
std::size_t shard_of_this_thread() {
    static std::atomic<std::size_t> next{0};
    thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed);
    return shard;
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}
}  // namespace

bool ModuleProxy::put(Message&& m) { return put(std::move(m), true); }

bool ModuleProxy::try_put(Message&& m) { return put(std::move(m), false); }

bool ModuleProxy::put(Message&& m, bool wait_for_room) {
    ACE_Message_Block* block = nullptr;
    try {
        block = InputQueue::wrap(std::move(m), unit_);
    } catch (const std::bad_alloc&) {
        set_send_error(SendError::out_of_memory);
        return false;
    }
    auto& shard = shards_[shard_of_this_thread() % kShards];
    const ACE_Time_Value* wait = &ACE_Time_Value::zero;  // first try: no waiting
    ACE_Time_Value deadline;
    for (;;) {
        // The target and its generation's parity are one word, so the counter a sender stands
        // in always belongs to the queue it writes to: retarget_i() waits only for writers of
        // the old queue, never for one blocked on the (not yet served) new one.
        const std::uintptr_t target = target_.load();
        auto& inflight = shard.inflight[target & 1];
        inflight.fetch_add(1);
        if (target_.load() != target) {  // retargeted between the two loads: count again
            inflight.fetch_sub(1);
            continue;
        }
        auto* queue = reinterpret_cast<InputQueue*>(target & ~std::uintptr_t{1});
        const bool swapping = swapping_.load(std::memory_order_relaxed);
        if (swapping) note_buffered();
        const auto result = queue ? queue->put(block, wait) : InputQueue::Put::closed;
        if (result == InputQueue::Put::done && swapping)
            buffered_.fetch_add(1, std::memory_order_acq_rel);
        inflight.fetch_sub(1);
        if (result == InputQueue::Put::done) return true;
        if (result != InputQueue::Put::full || !wait_for_room) {
            InputQueue::discard(block);
            set_send_error(result == InputQueue::Put::closed      ? SendError::refused
                           : result == InputQueue::Put::too_large ? SendError::too_large
                                                                  : SendError::full);
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
    // Stamped before the message is enqueued, so the new version can never serve a message
    // older than the stamp: the blackout figure is never taken against an unset time.
    if (first_buffered_ns_.load(std::memory_order_relaxed) != 0) return;
    std::int64_t unset = 0;
    first_buffered_ns_.compare_exchange_strong(unset, now_ns(), std::memory_order_acq_rel);
}

std::optional<std::chrono::nanoseconds> ModuleProxy::blackout(Clock::time_point deadline) const {
    if (buffered() == 0) return std::nullopt;
    Task task;
    {
        std::lock_guard lock(mutex_);
        task = current_;
    }
    const auto first = first_buffered_ns_.load(std::memory_order_acquire);
    if (!task || first == 0) return std::nullopt;
    const auto served = task->wait_first_served(deadline);
    if (!served) return std::nullopt;
    const auto window = served->time_since_epoch() - std::chrono::nanoseconds(first);
    if (window.count() < 0) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(window);
}

void ModuleProxy::retarget_i(std::shared_ptr<InputQueue> queue) {
    const std::uintptr_t parity = (target_.load() & 1) ^ 1;
    const std::uintptr_t old =
        target_.exchange(reinterpret_cast<std::uintptr_t>(queue.get()) | parity);
    // Every sender that may still write to the old queue counted itself under its parity.
    // They wait for room at most one slice (see put()), so this wait is short even when the
    // old queue is full and its consumer busy.
    for (auto& shard : shards_)
        while (shard.inflight[old & 1].load() != 0) std::this_thread::yield();
    queue_ = std::move(queue);
}

void ModuleProxy::expect_i(Phase expected, const char* operation) const {
    if (phase_ == expected) return;
    if (phase_ == Phase::serving || phase_ == Phase::retired)
        throw Error("module '" + name_ + "' cannot " + operation + ": it is " + to_string(phase_));
    throw Error("module '" + name_ + "' is in a transaction");
}

void ModuleProxy::trace(Step step, const Task& task, std::uint64_t transaction) {
    if (host_.tracing()) host_.trace(transaction, name_, task->version(), step);
}

std::pair<State, std::string> ModuleProxy::checkpoint_now(std::chrono::milliseconds limit) {
    Task task;
    {
        std::lock_guard lock(mutex_);
        if (phase_ != Phase::serving || !current_)
            throw Error("module '" + name_ + "' is in a transaction");
        task = current_;
    }
    return {task->checkpoint_now(limit), task->version()};
}

ModuleInfo ModuleProxy::info() const {
    std::lock_guard lock(mutex_);
    ModuleInfo i;
    i.name = name_;
    i.enabled = enabled_;
    i.in_transaction = phase_ != Phase::serving;
    i.handled = counters_.handled.load(std::memory_order_relaxed);
    i.handler_errors = counters_.errors.load(std::memory_order_relaxed);
    i.failed = counters_.failed.load(std::memory_order_relaxed);
    i.ticks_coalesced = ticks_coalesced_.load(std::memory_order_relaxed);
    i.notifications_dropped = notifications_dropped_.load(std::memory_order_relaxed);
    {
        std::lock_guard failure(counters_.failure_mutex);
        i.last_failure = counters_.last_failure;
        i.last_failure_time = counters_.last_failure_time;
    }
    if (queue_) i.queue_depth = queue_->size();
    if (current_) {
        i.kind = current_->library().kind();
        i.version = current_->library().version();
        i.library = current_->library().path();
        i.sha256 = current_->library().sha256();
        i.status = current_->status();
        if (i.in_transaction) i.queue_depth += current_->queue_depth();
        const char* in = "";
        i.stuck_for = current_->busy_for(&in);
        i.stuck = i.stuck_for >= limits_.stuck_after;
        if (!i.stuck) i.stuck_for = std::chrono::nanoseconds{0};
        if (i.stuck) i.stuck_in = in;
    }
    return i;
}

std::chrono::nanoseconds ModuleProxy::busy_for() const {
    std::lock_guard lock(mutex_);
    return current_ ? current_->busy_for() : std::chrono::nanoseconds{0};
}

std::shared_ptr<Library> ModuleProxy::library() const {
    std::lock_guard lock(mutex_);
    return current_ ? current_->shared_library() : nullptr;
}

std::optional<AuditResult> ModuleProxy::audit(std::chrono::milliseconds limit) {
    Task task;
    std::uint64_t number = 0;
    {
        std::lock_guard lock(mutex_);
        if (phase_ != Phase::serving || !current_ || !queue_) return std::nullopt;
        task = current_;
        number = task->request_audit(*queue_);
    }
    if (auto result = task->wait_audit(number, Clock::now() + limit)) return result;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", static_cast<double>(limit.count()) / 1000.0);
    return AuditResult{false, "module '" + name_ + "' version " + task->version() +
                                  " did not return from audit() within " + seconds + " s"};
}

bool ModuleProxy::called_from_own_thread() const {
    std::lock_guard lock(mutex_);
    return current_ && current_.get() == ModuleTask::calling();
}

void ModuleProxy::enable(std::uint64_t transaction) {
    std::lock_guard lock(mutex_);
    expect_i(Phase::serving, "be enabled");
    enabled_ = true;
    current_->set_active(*queue_);
    trace(Step::enable, current_, transaction);
}

void ModuleProxy::disable(std::uint64_t transaction) {
    std::lock_guard lock(mutex_);
    expect_i(Phase::serving, "be disabled");
    enabled_ = false;
    current_->set_passive(*queue_);
    trace(Step::disable, current_, transaction);
}

ModuleProxy::Task ModuleProxy::create(std::shared_ptr<Library> library, std::uint64_t transaction) {
    auto task = std::make_shared<ModuleTask>(host_, name_, std::move(library), counters_);
    task->launch(transaction);
    return task;
}

void ModuleProxy::attach(Task task) {
    std::lock_guard lock(mutex_);
    expect_i(Phase::detached, "be attached");
    current_ = std::move(task);
    enabled_ = true;
    phase_ = Phase::attached;
    retarget_i(new_queue());
}

ModuleProxy::Checkpoint ModuleProxy::prepare(std::chrono::milliseconds timeout, Intake intake,
                                             std::uint64_t transaction) {
    begin_prepare(intake, transaction);
    return await_prepared(timeout);
}

void ModuleProxy::begin_prepare(Intake intake, std::uint64_t transaction,
                                std::optional<std::uint32_t> down_to, Task successor,
                                std::optional<std::size_t> keep) {
    if (intake != Intake::buffer) successor = nullptr;  // a removal has no successor
    const auto begin = Clock::now();  // before the loop can take the termination message
    std::lock_guard lock(mutex_);
    expect_i(Phase::serving, "be prepared");
    phase_ = Phase::draining;
    was_enabled_ = enabled_;
    handed_over_ = false;
    buffered_.store(0);
    first_buffered_ns_.store(0);
    std::shared_ptr<InputQueue> drained = queue_;
    swapping_.store(intake == Intake::buffer);
    current_->set_passive(*drained);
    trace(Step::disable, current_, transaction);
    retarget_i(intake == Intake::buffer ? new_queue() : nullptr);
    term_ = current_->next_term(transaction, intake == Intake::buffer, down_to);
    if (successor) current_->hand_over_at(term_, {successor, queue_, transaction, keep});
    if (intake == Intake::refuse) current_->finish_at(term_);  // a removal ends there
    trace(Step::will_term, current_, transaction);             // before the loop can reach it
    drained->put_terminate(term_);
    draining_ = Draining{current_, std::move(successor), intake, begin};
}

ModuleProxy::Checkpoint ModuleProxy::await_prepared(std::chrono::milliseconds timeout) {
    Draining d;
    std::uint64_t term;
    {
        std::lock_guard lock(mutex_);
        if (phase_ != Phase::draining || !draining_.old)
            throw Error("module '" + name_ + "' is not being prepared");
        d = std::exchange(draining_, {});
        term = term_;
    }
    const Task& old = d.old;
    const Task& successor = d.successor;
    const Intake intake = d.intake;
    const auto begin = d.begin;
    // Past a limit, an armed hand-over is taken back before the vote is no; one that happened
    // meanwhile stands (the successor already serves).
    // A removal's end, decided with its termination message, is taken back the same way.
    auto handed = [&] {
        if (intake == Intake::refuse) return !old->disarm_finish(term);
        return successor && !old->disarm_hand_over();
    };
    // One wait, woken once: the loop parks after the termination message and its put_state().
    // Past the quiescence limit, a loop that took the message but still checkpoints gets the
    // state limit from the moment it took it (a removal asks for no checkpoint).
    const bool parked = old->wait_quiescent(term, begin + timeout);
    const auto taken = old->term_taken(term);
    if (!parked && !taken && !handed()) {
        if (old->exited())
            throw Timeout("module '" + name_ +
                          "' has failed: its thread ended inside module code (remove it with "
                          "-force)");
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", timeout.count() / 1000.0);
        throw Timeout("module '" + name_ + "' did not reach quiescence within " + seconds +
                      " s (its handler is still busy)");
    }
    const auto limit = intake == Intake::buffer ? limits_.state_timeout : timeout;
    if (!parked && taken && !old->wait_quiescent(term, *taken + limit) && !handed()) {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", limit.count() / 1000.0);
        throw Timeout("module '" + name_ + "' version " + old->version() +
                      " did not return from put_state() within " + seconds + " s");
    }
    Checkpoint checkpoint;
    checkpoint.quiescence = (taken ? *taken : Clock::now()) - begin;
    std::tie(checkpoint.handled, checkpoint.failed) = old->served_at_term();
    if (intake != Intake::buffer) return checkpoint;
    if (handed()) {
        checkpoint.handed_over = true;
        checkpoint.handed = old->handed_checkpoint(&checkpoint.converted);
        std::lock_guard lock(mutex_);
        handed_over_ = true;
        return checkpoint;
    }
    checkpoint.state = old->take_checkpoint(&checkpoint.converted);
    return checkpoint;
}

void ModuleProxy::swap(Task fresh) {
    std::lock_guard lock(mutex_);
    expect_i(Phase::draining, "be swapped");
    previous_ = std::exchange(current_, std::move(fresh));
    phase_ = Phase::swapped;
}

ModuleProxy::Task ModuleProxy::settle() {
    std::lock_guard lock(mutex_);
    if (previous_ && !previous_->abandoned()) previous_->finish(term_);
    return std::exchange(previous_, nullptr);
}

ModuleProxy::Task ModuleProxy::revert(std::uint64_t transaction, StateHandover own) {
    std::lock_guard lock(mutex_);
    if (!previous_) throw Error("module '" + name_ + "' has no previous version to go back to");
    Task fresh = std::exchange(current_, std::exchange(previous_, nullptr));
    current_->resume(term_, queue_, was_enabled_, transaction, std::move(own));
    enabled_ = was_enabled_;
    phase_ = Phase::serving;
    return fresh;
}

void ModuleProxy::abort(std::uint64_t transaction) {
    std::lock_guard lock(mutex_);
    expect_i(Phase::draining, "abort");
    if (!queue_) retarget_i(new_queue());  // reopen after refusing
    swapping_.store(false);
    phase_ = Phase::aborted;
    current_->hold(transaction);
}

void ModuleProxy::start(std::uint64_t transaction, bool hold, StateHandover state) {
    std::lock_guard lock(mutex_);
    if (phase_ == Phase::aborted) {
        current_->resume(term_, queue_, was_enabled_, transaction, std::move(state));
        enabled_ = was_enabled_;
    } else {
        if (phase_ != Phase::swapped) expect_i(Phase::attached, "be started");
        if (!(phase_ == Phase::swapped && handed_over_))  // else its predecessor started it
            current_->start(queue_, transaction, hold, std::move(state),
                            previous_ ? previous_->version() : std::string("none"));
        enabled_ = true;
    }
    swapping_.store(false);
    phase_ = Phase::serving;
}

ModuleProxy::Task ModuleProxy::retire() {
    std::lock_guard lock(mutex_);
    expect_i(Phase::draining, "be retired");
    Task old = std::move(current_);
    old->finish(term_);
    phase_ = Phase::retired;
    return old;
}

// The stuck implementation is given up. Safe only while it is inside module code: it then
// sees the mark when it returns, before it takes another message (the mark and its busy flag
// are written and read in opposite order, both sequentially consistent).
void ModuleProxy::abandon_stuck_i(const char* operation) {
    expect_i(Phase::draining, operation);
    current_->abandon();
    if (current_->busy_for() == std::chrono::nanoseconds{0} && !current_->exited())
        throw Error("module '" + name_ + "' is not stuck in a handler; it cannot be " + operation +
                    " by force");
}

std::pair<ModuleProxy::Task, std::uint64_t> ModuleProxy::force_retire() {
    std::lock_guard lock(mutex_);
    abandon_stuck_i("removed");
    std::uint64_t dropped = 0;
    if (auto drained = current_->queue()) {
        for (auto* block : drained->drain()) {
            InputQueue::discard(block);
            ++dropped;
        }
    }
    phase_ = Phase::retired;
    return {std::move(current_), dropped};
}

ModuleProxy::Task ModuleProxy::force_swap(Task fresh) {
    std::lock_guard lock(mutex_);
    abandon_stuck_i("replaced");
    if (auto drained = current_->queue()) queue_->prepend(drained->drain());
    Task stuck = std::exchange(current_, std::move(fresh));
    phase_ = Phase::swapped;
    return stuck;
}

}  // namespace nonstop::detail
