#include "module_task.hpp"

#include <exception>

#include "nonstop/error.hpp"
#include "version_repository.hpp"

namespace nonstop::detail {

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
    bool launched;
    {
        // A task still parked with no decision (a new version that never started) ends here;
        // one already told to finish (a replaced version) is only joined.
        std::lock_guard lock(mutex_);
        launched = launched_;
        if (launched_ && !exited_ && decisions_.empty()) {
            decisions_[reached_term_] = Decision{true, nullptr, false};
            cv_.notify_all();
        }
    }
    if (launched) join();
    library_->destroy(module_);  // with the library's own code, before it can be unmapped
    module_ = nullptr;
    decisions_.clear();
    queue_.reset();
    library_.reset();
}

const std::string& ModuleTask::version() const { return library_->version(); }

void ModuleTask::launch(std::uint64_t transaction) {
    transaction_.store(transaction, std::memory_order_relaxed);
    {
        std::lock_guard lock(mutex_);
        launched_ = true;
    }
    if (activate(THR_NEW_LWP | THR_JOINABLE, 1) != 0) {
        std::lock_guard lock(mutex_);
        launched_ = false;
        initialized_ = true;
        exited_ = true;
        init_error_ = "cannot start a thread for module '" + name_ + "'";
        cv_.notify_all();
    }
}

void ModuleTask::wait_initialized() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return initialized_; });
    if (!init_error_.empty()) throw Error(init_error_);
}

std::uint64_t ModuleTask::next_term(std::uint64_t transaction) {
    transaction_.store(transaction, std::memory_order_relaxed);
    return ++terms_issued_;
}

void ModuleTask::join() { wait(); }

bool ModuleTask::wait_quiescent(std::uint64_t term, Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return reached_term_ >= term || exited_; }) &&
           !exited_;
}

void ModuleTask::hold(std::uint64_t transaction) { trace(Step::wait_to_start, transaction); }

void ModuleTask::resume(std::uint64_t term, std::shared_ptr<InputQueue> queue, bool enable,
                        std::uint64_t transaction) {
    // Traced here, in the caller's thread, so the step is recorded before the transaction
    // reports; the module thread takes the decision a moment later.
    trace(Step::start, transaction);
    std::lock_guard lock(mutex_);
    decisions_[term] = Decision{false, std::move(queue), enable};
    cv_.notify_all();
}

void ModuleTask::start(std::shared_ptr<InputQueue> queue, std::uint64_t transaction) {
    std::vector<std::function<void()>> deferred;
    {
        std::lock_guard lock(mutex_);
        started_ = true;
        deferred.swap(deferred_);
    }
    for (auto& action : deferred) call_hook(action);
    resume(0, std::move(queue), true, transaction);
}

void ModuleTask::finish(std::uint64_t term) {
    std::lock_guard lock(mutex_);
    decisions_[term] = Decision{true, nullptr, false};
    cv_.notify_all();
}

State ModuleTask::checkpoint() {
    try {
        return module_->put_state();
    } catch (const std::exception& e) {
        throw Error("module '" + name_ + "' failed to checkpoint its state: " + e.what());
    } catch (...) {
        throw Error("module '" + name_ + "' failed to checkpoint its state");
    }
}

void ModuleTask::restore(const State& s, const std::string& from_version) {
    const std::string what = "module '" + name_ + "' version " + version() +
                             " failed to restore the state of version " + from_version;
    try {
        module_->get_state(s);
    } catch (const std::exception& e) {
        throw Error(what + ": " + e.what());
    } catch (...) {
        throw Error(what);
    }
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

std::optional<Clock::time_point> ModuleTask::wait_first_served(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [&] { return first_served_set_ || exited_; }) ||
        !first_served_set_)
        return std::nullopt;
    return first_served_;
}

void ModuleTask::trace(Step step, std::uint64_t transaction) {
    if (host_.tracing()) host_.trace(transaction, name_, library_->version(), step);
}

void ModuleTask::trace(Step step) { trace(step, transaction_.load(std::memory_order_relaxed)); }

template <class F>
void ModuleTask::call_hook(F&& hook) {
    try {
        hook();
    } catch (...) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
    }
}

namespace {
thread_local const ModuleTask* calling_task = nullptr;
}

const ModuleTask* ModuleTask::calling() { return calling_task; }

void ModuleTask::initialize() {
    std::string error;
    try {
        module_->initialize();
    } catch (const std::exception& e) {
        error = "module '" + name_ + "' failed to initialize: " + e.what();
    } catch (...) {
        error = "module '" + name_ + "' failed to initialize with a non-standard exception";
    }
    if (error.empty()) {
        // Traced before the upgrader hears of it, so the steps are seen in causal order.
        trace(Step::init);
        trace(Step::wait_to_start);
    }
    std::lock_guard lock(mutex_);
    initialized_ = true;
    init_error_ = error;
    exited_ = !error.empty();
    status_.store(exited_ ? ModuleStatus::stopped : ModuleStatus::waiting,
                  std::memory_order_release);
    cv_.notify_all();
}

int ModuleTask::svc() {
    calling_task = this;
    initialize();
    if (status() == ModuleStatus::stopped) return 0;
    std::uint64_t term = 0;
    for (;;) {
        Decision decision;
        {
            std::unique_lock lock(mutex_);
            reached_term_ = term;
            cv_.notify_all();
            cv_.wait(lock, [&] { return decisions_.count(term) != 0; });
            decision = std::move(decisions_[term]);
            decisions_.erase(term);
            if (decision.finish) break;
            queue_ = decision.queue;
            first_served_set_ = false;
        }
        awaiting_first_ = true;
        passive_.store(!decision.enable, std::memory_order_release);
        status_.store(decision.enable ? ModuleStatus::service : ModuleStatus::passive,
                      std::memory_order_release);
        if (decision.enable) call_hook([&] { module_->enable(); });
        term = serve(*decision.queue);
        status_.store(ModuleStatus::quiescent, std::memory_order_release);
    }
    passive_.store(true, std::memory_order_release);
    call_hook([&] { module_->terminate(); });
    std::lock_guard lock(mutex_);
    status_.store(ModuleStatus::stopped, std::memory_order_release);
    exited_ = true;
    queue_.reset();
    cv_.notify_all();
    return 0;
}

void ModuleTask::serve_message(ACE_Message_Block* block) {
    auto message = InputQueue::message_of(block);
    block->release();
    if (awaiting_first_) {
        awaiting_first_ = false;
        std::lock_guard lock(mutex_);
        first_served_ = Clock::now();
        first_served_set_ = true;
        cv_.notify_all();
    }
    try {
        module_->handle(*message);
    } catch (...) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
    }
    // One writer at a time (the serving version's thread; versions hand over through the
    // decision mutex), so a plain store, not a locked add, suffices.
    counters_.handled.store(counters_.handled.load(std::memory_order_relaxed) + 1,
                            std::memory_order_relaxed);
}

std::uint64_t ModuleTask::serve(InputQueue& queue) {
    for (;;) {
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
                call_hook([&] { enable ? module_->enable() : module_->disable(); });
                break;
            }
            case InputQueue::kTerminate: {
                const std::uint64_t term = InputQueue::term_of(block);
                block->release();
                trace(Step::get_term);
                trace(Step::quiescent);
                return term;
            }
            default: block->release(); break;
        }
    }
}

}  // namespace nonstop::detail
