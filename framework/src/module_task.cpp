#include "module_task.hpp"

#include <cxxabi.h>
#include <pthread.h>

#include <ace/Thread_Manager.h>

#include <cstdio>
#include <exception>

#include "crash_recorder.hpp"
#include "nonstop/error.hpp"
#include "thread_pool.hpp"
#include "version_repository.hpp"

namespace nonstop::detail {

namespace {
thread_local const ModuleTask* calling_task = nullptr;

// The time module calls are stamped with: a coarse clock that the watchdog advances, so that
// marking every handle() call busy costs a load, not a clock read (measured: the clock read
// cost 3-5% of the send throughput). Its resolution is the watchdog's period.
std::atomic<std::int64_t> coarse_ns{0};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

std::int64_t coarse_now_ns() {
    const auto t = coarse_ns.load(std::memory_order_relaxed);
    return t != 0 ? t : now_ns();
}

std::string seconds(std::chrono::milliseconds limit) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f s", static_cast<double>(limit.count()) / 1000.0);
    return text;
}
}  // namespace

ModuleTask::ModuleTask(ModuleHost& host, std::string name, std::shared_ptr<Library> library,
                       ServiceCounters& counters)
    : host_(host),
      name_(std::move(name)),
      library_(std::move(library)),
      context_(*this),
      counters_(counters) {
    module_ = library_->create();
    module_->context_ = &context_;
}

ModuleTask::~ModuleTask() {
    discard();
    bool launched;
    {
        std::lock_guard lock(mutex_);
        launched = launched_;
    }
    if (launched) join();
    // Still here when the thread never ran its end (no thread, or initialize() failed).
    if (module_ != nullptr) library_->destroy(module_);
    module_ = nullptr;
    decisions_.clear();
    queue_.reset();
    library_.reset();
}

void ModuleTask::discard() {
    // A task still parked with no decision (a new version that never started, or one held
    // after enable()) ends; one already told to finish (a replaced version) is left to it.
    std::lock_guard lock(mutex_);
    if (launched_ && !exited_ && decisions_.empty()) {
        decisions_[reached_term_] = Decision::end();
        cv_.notify_all();
    }
}

const std::string& ModuleTask::version() const { return library_->version(); }

void ModuleTask::launch(std::uint64_t transaction) {
    transaction_.store(transaction, std::memory_order_relaxed);
    {
        std::lock_guard lock(mutex_);
        launched_ = true;
    }
    if (!start_thread()) {
        std::lock_guard lock(mutex_);
        launched_ = false;
        initialized_ = true;
        exited_ = true;
        init_error_ = "cannot start a thread for module '" + name_ + "'";
        cv_.notify_all();
    }
}

// A thread of its own: a reused one when the runtime keeps them and the library has no
// thread-locals of its own (see Library::thread_locals()), else a new ACE thread.
bool ModuleTask::start_thread() {
    ThreadPool* pool = host_.thread_pool();
    if (pool != nullptr && !library_->thread_locals()) {
        pooled_ = true;
        // Told done by the pool once the thread is parked again (also when module code ended
        // it), so that an instance loaded after this one ended finds the thread.
        return pool->run([this] { svc(); },
                         [this](std::optional<pthread_t> ending) {
                             // Under the lock: the joiner may destroy the task once it sees it.
                             std::lock_guard lock(mutex_);
                             if (ending && detached_)
                                 ::pthread_detach(*ending);
                             else
                                 ending_thread_ = ending;
                             thread_done_ = true;
                             cv_.notify_all();
                         });
    }
    std::size_t stack_size[1] = {host_.thread_stack_size()};  // 0: the default
    return activate(THR_NEW_LWP | THR_JOINABLE, 1, 0, ACE_DEFAULT_THREAD_PRIORITY, -1, nullptr,
                    nullptr, nullptr, stack_size) == 0;
}

void ModuleTask::wait_initialized(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, limit, [&] { return initialized_; })) {
        lock.unlock();
        abandon();
        throw Error("module '" + name_ + "' version " + version() +
                    " did not return from initialize() within " + seconds(limit));
    }
    if (!init_error_.empty()) throw Error(init_error_);
}

std::uint64_t ModuleTask::next_term(std::uint64_t transaction, bool checkpoint,
                                    std::optional<std::uint32_t> down_to) {
    transaction_.store(transaction, std::memory_order_relaxed);
    const std::uint64_t term = ++terms_issued_;
    std::lock_guard lock(mutex_);
    checkpoint_term_ = checkpoint ? term : 0;
    down_to_ = down_to;
    converted_ = false;
    checkpoint_.reset();
    checkpoint_error_.clear();
    successor_ = {};
    successor_term_ = 0;
    handed_over_ = false;
    handed_ = {};
    return term;
}

void ModuleTask::hand_over_at(std::uint64_t term, Successor successor) {
    std::lock_guard lock(mutex_);
    successor_ = std::move(successor);
    successor_term_ = term;
}

bool ModuleTask::disarm_hand_over() {
    Successor dropped;  // released outside the lock
    std::lock_guard lock(mutex_);
    dropped = std::exchange(successor_, {});
    successor_term_ = 0;
    return !handed_over_;
}

ModuleTask::Handed ModuleTask::handed_checkpoint(bool* converted) {
    std::lock_guard lock(mutex_);
    if (converted != nullptr) *converted = converted_;
    return handed_;
}

std::pair<std::uint64_t, std::uint64_t> ModuleTask::served_at_term() {
    std::lock_guard lock(mutex_);
    return {handled_at_term_, failed_at_term_};
}

std::optional<Clock::time_point> ModuleTask::term_taken(std::uint64_t term) {
    std::lock_guard lock(mutex_);
    if (term_seen_ < term) return std::nullopt;
    return term_seen_at_;
}

State ModuleTask::take_checkpoint(bool* converted) {
    std::lock_guard lock(mutex_);
    if (!checkpoint_) throw Error(checkpoint_error_);
    if (converted != nullptr) *converted = converted_;
    State state = std::move(*checkpoint_);
    checkpoint_.reset();
    return state;
}

// put_state() in this thread, within the hook's limits; first put_state_for(*down_to) when a
// schema is asked for (`converted`: it gave the state). The hook's error, empty if none.
std::string ModuleTask::put_state_hook(std::optional<std::uint32_t> down_to,
                                       std::optional<State>& state, bool& converted) {
    return call_hook("put_state", [&] {
        if (down_to) state = module_->put_state_for(*down_to);
        converted = state.has_value();
        if (!converted) state = module_->put_state();
    });
}

// put_state() at the termination message that asked for it, before the loop parks.
void ModuleTask::checkpoint_at(std::uint64_t term) {
    std::optional<std::uint32_t> down_to;
    {
        // Nobody is woken here: whoever waits for quiescence waits for the loop to park, once,
        // with the checkpoint taken (and, armed, the successor started).
        std::lock_guard lock(mutex_);
        term_seen_ = term;
        term_seen_at_ = Clock::now();
        // This version serves no more: what it served is final (the release counts from it).
        handled_at_term_ = counters_.handled.load(std::memory_order_relaxed);
        failed_at_term_ = counters_.failed.load(std::memory_order_relaxed);
        if (term != checkpoint_term_) return;
        down_to = down_to_;
    }
    std::optional<State> state;
    bool converted = false;
    std::string error = put_state_hook(down_to, state, converted);
    if (!error.empty()) error = "module '" + name_ + "' failed to checkpoint its state: " + error;
    Successor successor;
    Handed handed;
    {
        std::lock_guard lock(mutex_);
        converted_ = converted;
        checkpoint_error_ = std::move(error);
        if (checkpoint_error_.empty() && successor_.task && successor_term_ == term) {
            // Decided under the lock disarm_hand_over() takes: either the upgrader took the
            // hand-over back (it gave up waiting) or it finds it done.
            successor = std::exchange(successor_, {});
            // Sized and typed here, before the successor may take the bytes.
            handed.state = std::make_shared<State>(std::move(*state));
            handed.schema = handed.state->schema;
            handed.bytes = handed.state->bytes.size();
            handed.given = !successor.keep || handed.bytes > *successor.keep;
            handed_ = handed;
            handed_over_ = true;
        } else {
            checkpoint_ = std::move(state);
        }
    }
    if (!successor.task) return;
    try {
        hand_over(successor, handed);
    } catch (const std::exception& e) {  // out of memory running its deferred side effects
        // The successor never got its start: the upgrader finds it refused and gives the
        // module back to this version.
        successor.task->refuse_start("module '" + name_ + "' could not start version " +
                                     successor.task->version() + ": " + e.what());
    }
}

// The steps the upgrader would take between the vote and the start, in the order it would
// trace them, then the successor's start: one wake-up (of its thread) instead of two.
void ModuleTask::hand_over(const Successor& successor, const Handed& handed) {
    if (host_.tracing()) {
        const auto transaction = successor.transaction;
        trace(Step::put_state, transaction);
        trace(Step::prepared, transaction);
        trace(Step::commit, transaction);
        host_.trace(transaction, name_, successor.task->version(), Step::hot_swapped);
    }
    successor.task->start(successor.queue, successor.transaction, false,
                          handed.given ? StateHandover::give(handed.state)
                                       : StateHandover(std::shared_ptr<const State>(handed.state)),
                          version());
}

std::uint64_t ModuleTask::request_audit(InputQueue& queue) {
    std::uint64_t number;
    {
        std::lock_guard lock(mutex_);
        number = ++audits_asked_;
    }
    queue.put_control_first(InputQueue::kAudit);
    return number;
}

std::optional<AuditResult> ModuleTask::wait_audit(std::uint64_t number,
                                                  Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [&] { return audits_done_ >= number || exited_; }) ||
        audits_done_ < number)
        return std::nullopt;
    return audit_;
}

// Between two messages, in this thread; a throw is an unhealthy result naming what it threw.
void ModuleTask::audit() {
    AuditResult result;
    const std::string error = call_hook("audit", [&] { result = module_->audit(); });
    if (!error.empty()) result = AuditResult{false, "audit() threw: " + error};
    std::lock_guard lock(mutex_);
    audit_ = std::move(result);
    audits_done_ = audits_asked_;
    cv_.notify_all();
}

State ModuleTask::checkpoint_now(std::chrono::milliseconds limit) {
    auto q = queue();
    std::uint64_t ticket = 0;
    {
        std::lock_guard lock(mutex_);
        if (!q || exited_ || abandoned() || !started_)
            throw Error("module '" + name_ + "' is not serving");
        ticket = ++live_asked_;
    }
    q->put_control_first(InputQueue::kCheckpoint);
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, limit, [&] { return live_done_ >= ticket || exited_; }) ||
        live_done_ < ticket)
        throw Error("module '" + name_ + "' version " + version() +
                    " did not take its checkpoint within " + seconds(limit) +
                    " (busy in a handler, or in put_state())");
    if (!live_state_)
        throw Error("module '" + name_ + "' failed to checkpoint its state: " + live_error_);
    State state = std::move(*live_state_);
    live_state_.reset();
    return state;
}

// In this thread, between two messages: answers every request made so far.
void ModuleTask::checkpoint_live() {
    std::uint64_t answers;
    {
        std::lock_guard lock(mutex_);
        answers = live_asked_;
        if (live_done_ >= answers) return;  // a late block of a request already answered
    }
    std::optional<State> state;
    const std::string error = call_hook("put_state", [&] { state = module_->put_state(); });
    std::lock_guard lock(mutex_);
    live_done_ = answers;
    live_state_ = std::move(state);
    live_error_ = error;
    cv_.notify_all();
}

void ModuleTask::join() {
    if (!pooled_) {
        wait();
        return;
    }
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return thread_done_; });
    // A thread that ended rather than parking: its thread-specific data's destructors, perhaps
    // in this task's library, have run once it is joined.
    if (const auto ending = std::exchange(ending_thread_, std::nullopt)) {
        lock.unlock();
        ::pthread_join(*ending, nullptr);
    }
}

void ModuleTask::detach() {
    if (pooled_) {
        std::lock_guard lock(mutex_);
        detached_ = true;
        if (const auto ending = std::exchange(ending_thread_, std::nullopt))
            ::pthread_detach(*ending);
        return;
    }
    ACE_hthread_t threads[1];
    if (thr_mgr() != nullptr && thr_mgr()->hthread_list(this, threads, 1) == 1)
        ::pthread_detach(threads[0]);
}

bool ModuleTask::exited() {
    std::lock_guard lock(mutex_);
    return exited_ || !launched_;
}

bool ModuleTask::wait_exited(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return exited_ || !launched_; });
}

bool ModuleTask::wait_quiescent(std::uint64_t term, Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return reached_term_ >= term || exited_; }) &&
           reached_term_ >= term && (!exited_ || retiring_);
}

void ModuleTask::hold(std::uint64_t transaction) { trace(Step::wait_to_start, transaction); }

void ModuleTask::resume(std::uint64_t term, std::shared_ptr<InputQueue> queue, bool enable,
                        std::uint64_t transaction, StateHandover own) {
    // Traced here, in the caller's thread, so the step is recorded before the transaction
    // reports; the module thread takes the decision a moment later.
    trace(Step::start, transaction);
    std::lock_guard lock(mutex_);
    decisions_[term] = Decision{false, std::move(queue), enable, false, std::move(own), {}};
    cv_.notify_all();
}

void ModuleTask::start(std::shared_ptr<InputQueue> queue, std::uint64_t transaction, bool hold,
                       StateHandover state, std::string from_version) {
    std::vector<std::function<void()>> deferred;
    {
        std::lock_guard lock(mutex_);
        started_ = true;
        deferred.swap(deferred_);
    }
    for (auto& action : deferred) action();
    trace(Step::start, transaction);
    {
        std::lock_guard lock(mutex_);
        enabling_ = Enabling::idle;
        start_error_.clear();
        decisions_[0] = Decision{false, std::move(queue), true,
                                 hold,  std::move(state), std::move(from_version)};
    }
    cv_.notify_all();  // outside the lock: the caller holds the task
}

void ModuleTask::refuse_start(std::string why) {
    std::lock_guard lock(mutex_);
    start_error_ = std::move(why);
    enabling_ = Enabling::refused;
    cv_.notify_all();
}

std::string ModuleTask::start_error() {
    std::lock_guard lock(mutex_);
    return start_error_;
}

bool ModuleTask::wait_enabled(std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    if (cv_.wait_for(lock, limit, [&] {
            return enabling_ == Enabling::enabled || enabling_ == Enabling::refused || exited_;
        }))
        return enabling_ == Enabling::enabled;
    // Decided under the lock the loop takes before it serves: it never takes a message now.
    enabling_ = Enabling::abandoned;
    lock.unlock();
    abandon();
    return false;
}

std::string ModuleTask::try_state(const State& state) {
    return call_hook("get_state", [&] { module_->get_state(state); });
}

void ModuleTask::go() {
    std::lock_guard lock(mutex_);
    go_ = true;
    cv_.notify_all();
}

void ModuleTask::finish(std::uint64_t term) {
    {
        std::lock_guard lock(mutex_);
        if (retiring_) return;
        decisions_[term] = Decision::end();
    }
    cv_.notify_all();  // outside the lock: the caller holds the task
}

void ModuleTask::finish_at(std::uint64_t term) {
    std::lock_guard lock(mutex_);
    decisions_[term] = Decision::end();
    retiring_ = true;
}

bool ModuleTask::disarm_finish(std::uint64_t term) {
    std::lock_guard lock(mutex_);
    if (!retiring_) return true;
    if (reached_term_ >= term) return false;  // the loop took the decision with the term
    decisions_.erase(term);
    retiring_ = false;
    return true;
}

void ModuleTask::abandon() {
    passive_.store(true, std::memory_order_release);
    abandoned_.store(true, std::memory_order_seq_cst);
    std::lock_guard lock(mutex_);
    cv_.notify_all();
}

void ModuleTask::set_passive(InputQueue& queue) {
    passive_.store(true, std::memory_order_release);
    queue.put_control_first(InputQueue::kDisable);
}

void ModuleTask::set_active(InputQueue& queue) {
    passive_.store(false, std::memory_order_release);
    queue.put_control_first(InputQueue::kEnable);
}

void ModuleTask::defer_or_run(std::function<void()> action) {
    {
        std::lock_guard lock(mutex_);
        if (!started_) {
            deferred_.push_back(std::move(action));
            return;
        }
    }
    action();
}

std::size_t ModuleTask::queue_depth() {
    std::shared_ptr<InputQueue> q;
    {
        std::lock_guard lock(mutex_);
        q = queue_;
    }
    return q ? q->size() : 0;
}

std::shared_ptr<InputQueue> ModuleTask::queue() {
    std::lock_guard lock(mutex_);
    return queue_;
}

std::optional<Clock::time_point> ModuleTask::wait_first_served(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [&] { return first_served_set_ || exited_; }) ||
        !first_served_set_)
        return std::nullopt;
    return first_served_;
}

std::chrono::nanoseconds ModuleTask::busy_for(const char** in) const {
    const auto since = busy_since_ns_.load(std::memory_order_acquire);
    if (since == 0) return std::chrono::nanoseconds{0};
    if (in != nullptr) *in = busy_in_.load(std::memory_order_relaxed);
    return std::chrono::nanoseconds(std::max<std::int64_t>(coarse_now_ns() - since, 1));
}

void ModuleTask::trace(Step step, std::uint64_t transaction) {
    if (host_.tracing()) host_.trace(transaction, name_, library_->version(), step);
}

void ModuleTask::trace(Step step) { trace(step, transaction_.load(std::memory_order_relaxed)); }

void ModuleTask::note_failure(const char* where, const std::string& what) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(counters_.failure_mutex);
    counters_.last_failure = std::string(where) + "(): " + what;
    counters_.last_failure_time = std::chrono::system_clock::now();
}

// Runs module code in this thread, marked busy for the watchdog. False when it threw (the
// failure is counted and kept); a thread that ends inside it (pthread_exit, cancellation)
// unwinds on through the loop, which marks the module failed.
template <class F>
bool ModuleTask::call_module(const char* where, F&& call) {
    busy_in_.store(where, std::memory_order_relaxed);
    busy_since_ns_.store(coarse_now_ns(), std::memory_order_release);
    bool ok = true;
    try {
        call();
    } catch (abi::__forced_unwind&) {
        busy_since_ns_.store(0, std::memory_order_seq_cst);
        note_failure(where, "the thread ended inside the call (pthread_exit or cancellation)");
        throw;
    } catch (const std::exception& e) {
        ok = false;
        note_failure(where, e.what());
    } catch (...) {
        ok = false;
        note_failure(where, "a non-standard exception");
    }
    busy_since_ns_.store(0, std::memory_order_seq_cst);
    return ok;
}

// Runs a hook whose failure fails a transaction step: marked busy as call_module() does, but
// what it threw is handed back ("" when nothing) rather than counted as a handler failure.
template <class F>
std::string ModuleTask::call_hook(const char* where, F&& call) {
    std::string error;
    call_module(where, [&] {
        try {
            call();
        } catch (abi::__forced_unwind&) {
            throw;
        } catch (const std::exception& e) {
            error = e.what();
        } catch (...) {
            error = "a non-standard exception";
        }
    });
    return error;
}

const ModuleTask* ModuleTask::calling() { return calling_task; }

void ModuleTask::advance_clock() { coarse_ns.store(now_ns(), std::memory_order_relaxed); }

void ModuleTask::initialize() {
    std::string error = call_hook("initialize", [&] { module_->initialize(); });
    if (!error.empty()) error = "module '" + name_ + "' failed to initialize: " + error;
    if (error.empty() && !abandoned()) {
        // Traced before the upgrader hears of it, so the steps are seen in causal order.
        trace(Step::init);
        trace(Step::wait_to_start);
    }
    {
        std::lock_guard lock(mutex_);
        initialized_ = true;
        init_error_ = error;
        if (!error.empty())
            status_.store(ModuleStatus::stopped, std::memory_order_release);
        else
            status_.store(ModuleStatus::waiting, std::memory_order_release);
    }
    // Outside the lock, so that the waiter does not wake into a held mutex (a second sleep);
    // this thread keeps the task alive.
    cv_.notify_all();
}

// A new version's get_state() (take_state() when it is handed the only copy), in its own
// thread when it starts and before it takes a message; false (with the reason kept for
// start_error()) when it threw.
bool ModuleTask::restore(const Decision& decision) {
    trace(Step::get_state);
    const auto& given = decision.state.given;
    if (decision.state.returned) {  // its own, back: it serves on whatever happens
        call_module("take_state", [&] { module_->take_state(std::move(*given)); });
        return true;
    }
    const std::string error =
        given ? call_hook("take_state", [&] { module_->take_state(std::move(*given)); })
              : call_hook("get_state", [&] { module_->get_state(*decision.state.kept); });
    if (error.empty()) return true;
    std::lock_guard lock(mutex_);
    start_error_ = "module '" + name_ + "' version " + version() +
                   " failed to restore the state of version " + decision.from_version + ": " +
                   error;
    enabling_ = Enabling::refused;
    cv_.notify_all();
    return false;
}

// After a serve decision: get_state() and enable() if asked, then (held) wait for go().
// parked: it refused its state and waits, untouched, to be discarded; stop: it must not serve
// (abandoned, or discarded while held).
ModuleTask::Begin ModuleTask::begin_service(const Decision& decision) {
    awaiting_first_ = true;
    {
        std::lock_guard lock(mutex_);
        if (enabling_ == Enabling::abandoned) return Begin::stop;
        enabling_ = Enabling::enabling;
    }
    if (decision.state && !restore(decision)) return abandoned() ? Begin::stop : Begin::parked;
    if (decision.enable) {
        status_.store(ModuleStatus::service, std::memory_order_release);
        passive_.store(false, std::memory_order_release);
        call_module("enable", [&] { module_->enable(); });
    } else {
        passive_.store(true, std::memory_order_release);
        status_.store(ModuleStatus::passive, std::memory_order_release);
    }
    std::unique_lock lock(mutex_);
    if (enabling_ == Enabling::abandoned || abandoned()) return Begin::stop;
    enabling_ = Enabling::enabled;
    held_ = decision.hold;
    cv_.notify_all();
    if (!decision.hold) return Begin::serve;
    for (;;) {
        cv_.wait(lock, [&] {
            return go_ || abandoned() || !decisions_.empty() || give_back_schema_.has_value();
        });
        if (go_ || abandoned() || !decisions_.empty()) break;
        const std::uint32_t schema = *std::exchange(give_back_schema_, std::nullopt);
        lock.unlock();
        std::optional<State> state;
        bool converted = false;
        const std::string error = put_state_hook(schema, state, converted);
        lock.lock();
        if (error.empty()) given_back_ = std::move(state);
        give_back_done_ = true;
        cv_.notify_all();
    }
    held_ = false;
    return go_ && !abandoned() ? Begin::serve : Begin::stop;
}

std::optional<State> ModuleTask::give_state_back(std::uint32_t schema,
                                                 std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    // Its group may have given up on another target while this one still enabled.
    const auto deadline = Clock::now() + limit;
    if (!cv_.wait_until(lock, deadline, [&] { return held_ || exited_ || abandoned(); }) ||
        !held_ || abandoned())
        return std::nullopt;
    give_back_schema_ = schema;
    give_back_done_ = false;
    cv_.notify_all();
    if (!cv_.wait_until(lock, deadline, [&] { return give_back_done_ || exited_; })) {
        lock.unlock();
        abandon();  // still in put_state(): it will never serve, and is disposed of as stuck
        return std::nullopt;
    }
    return std::exchange(given_back_, std::nullopt);
}

// The end of service, in this thread: terminate(), then the instance is destroyed with its own
// library's code, so a hang in either holds only this thread.
void ModuleTask::end_service() {
    passive_.store(true, std::memory_order_release);
    call_module("terminate", [&] { module_->terminate(); });
    if (abandoned()) return;
    call_module("destroy", [&] { library_->destroy(module_); });
    module_ = nullptr;
}

int ModuleTask::svc() {
    calling_task = this;
    CrashRecorder::enter_module(name_, library_->version());
    // Marks the end of the thread however it ends, also by pthread_exit inside module code.
    struct ExitMark {
        ModuleTask& task;
        bool clean = false;
        ~ExitMark() {
            std::lock_guard lock(task.mutex_);
            if (!clean)
                task.status_.store(ModuleStatus::failed, std::memory_order_release);
            else if (task.status() != ModuleStatus::failed)
                task.status_.store(ModuleStatus::stopped, std::memory_order_release);
            task.passive_.store(true, std::memory_order_release);
            task.exited_ = true;
            task.initialized_ = true;
            task.queue_.reset();
            task.cv_.notify_all();
            CrashRecorder::leave_module();
            calling_task = nullptr;  // the thread may serve another instance (ThreadPool)
        }
    } mark{*this};
    initialize();
    if (status() == ModuleStatus::stopped || abandoned()) {
        mark.clean = true;
        return 0;
    }
    run_loop();
    mark.clean = true;
    return 0;
}

void ModuleTask::run_loop() {
    std::uint64_t term = 0;
    for (;;) {
        Decision decision;
        {
            {
                std::lock_guard lock(mutex_);
                reached_term_ = term;
            }
            cv_.notify_all();  // outside the lock, as in initialize()
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [&] { return decisions_.count(term) != 0 || abandoned(); });
            if (abandoned()) return;
            decision = std::move(decisions_[term]);
            decisions_.erase(term);
            if (decision.finish) break;
            queue_ = decision.queue;
            first_served_set_ = false;
        }
        const Begin begin = begin_service(decision);
        if (begin == Begin::parked) continue;  // at the same term, nothing taken
        if (begin == Begin::stop) {
            if (!abandoned()) end_service();
            return;
        }
        const auto next = serve(*decision.queue);
        if (!next) return;  // abandoned inside handle()
        term = *next;
        status_.store(ModuleStatus::quiescent, std::memory_order_release);
    }
    end_service();
}

void ModuleTask::serve_message(ACE_Message_Block* block) {
    struct Release {  // also when the handler ends the thread (unwinding)
        ACE_Message_Block* block;
        ~Release() { block->release(); }
    } release{block};
    const Message& message = InputQueue::message_of(block);
    if (awaiting_first_) {
        awaiting_first_ = false;
        std::lock_guard lock(mutex_);
        first_served_ = Clock::now();
        first_served_set_ = true;
        cv_.notify_all();
    }
    if (!call_module("handle", [&] { module_->handle(message); })) {
        // Served but failed: counted apart from handled, for the health rules.
        counters_.failed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // One writer at a time (the serving version's thread; versions hand over through the
    // decision mutex), so a plain store, not a locked add, suffices.
    counters_.handled.store(counters_.handled.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
}

std::optional<std::uint64_t> ModuleTask::serve(InputQueue& queue) {
    for (;;) {
        // Checked after the handler's busy mark is cleared: whoever abandons this task while
        // it is busy knows it will stop here (see ModuleProxy::force).
        if (abandoned()) return std::nullopt;
        ACE_Message_Block* block = queue.take();
        if (block == nullptr) continue;  // a dequeue interrupted by a signal
        switch (block->msg_type()) {
            case ACE_Message_Block::MB_DATA: serve_message(block); break;
            case InputQueue::kEnable:
            case InputQueue::kDisable: {
                const bool enable = block->msg_type() == InputQueue::kEnable;
                block->release();
                passive_.store(!enable, std::memory_order_release);
                status_.store(enable ? ModuleStatus::service : ModuleStatus::passive,
                              std::memory_order_release);
                if (enable)
                    call_module("enable", [&] { module_->enable(); });
                else
                    call_module("disable", [&] { module_->disable(); });
                break;
            }
            case InputQueue::kAudit:
                block->release();
                audit();
                break;
            case InputQueue::kCheckpoint:
                block->release();
                checkpoint_live();
                break;
            case InputQueue::kTerminate: {
                const std::uint64_t term = InputQueue::term_of(block);
                block->release();
                trace(Step::get_term);
                trace(Step::quiescent);
                checkpoint_at(term);
                return term;
            }
            default: block->release(); break;
        }
    }
}

}  // namespace nonstop::detail
