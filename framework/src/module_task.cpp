#include "module_task.hpp"

#include <exception>

#include "nonstop/module_proxy.hpp"
#include "nonstop/runtime.hpp"
#include "nonstop/version_repository.hpp"

namespace nonstop::detail {

ModuleTask::ModuleTask(Runtime& runtime, ModuleProxy& proxy, std::shared_ptr<Library> library)
    : runtime_(runtime),
      name_(proxy.name()),
      library_(std::move(library)),
      context_(*this),
      handled_(proxy.handled_),
      errors_(proxy.errors_) {
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

void ModuleTask::launch() {
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

std::string ModuleTask::wait_initialized() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return initialized_; });
    return init_error_;
}

void ModuleTask::join() { wait(); }

bool ModuleTask::wait_quiescent(std::uint64_t term, Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return reached_term_ >= term || exited_; }) &&
           !exited_;
}

void ModuleTask::resume(std::uint64_t term, std::shared_ptr<InputQueue> queue, bool enable) {
    std::lock_guard lock(mutex_);
    decisions_[term] = Decision{false, std::move(queue), enable};
    cv_.notify_all();
}

void ModuleTask::start(std::shared_ptr<InputQueue> queue) {
    std::vector<std::function<void()>> deferred;
    {
        std::lock_guard lock(mutex_);
        started_ = true;
        deferred.swap(deferred_);
    }
    for (auto& action : deferred) call_hook(action);
    // Traced here, in the upgrader's thread, so the step is recorded before the transaction
    // reports; the module thread takes it from the decision a moment later.
    trace("start");
    resume(0, std::move(queue), true);
}

void ModuleTask::finish(std::uint64_t term) {
    std::lock_guard lock(mutex_);
    decisions_[term] = Decision{true, nullptr, false};
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

std::optional<Clock::time_point> ModuleTask::wait_first_served(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [&] { return first_served_set_ || exited_; }) ||
        !first_served_set_)
        return std::nullopt;
    return first_served_;
}

void ModuleTask::trace(const char* step) { runtime_.trace(name_, library_->version(), step); }

template <class F>
void ModuleTask::call_hook(F&& hook) {
    try {
        hook();
    } catch (...) {
        errors_.fetch_add(1, std::memory_order_relaxed);
    }
}

namespace {
thread_local const ModuleTask* calling_task = nullptr;
}

const ModuleTask* ModuleTask::calling() { return calling_task; }

int ModuleTask::svc() {
    calling_task = this;
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
        trace("init");
        trace("wait to start");
    }
    {
        std::lock_guard lock(mutex_);
        initialized_ = true;
        init_error_ = error;
        if (!error.empty()) {
            exited_ = true;
            status_.store(ModuleStatus::stopped, std::memory_order_release);
        } else {
            status_.store(ModuleStatus::waiting, std::memory_order_release);
        }
        cv_.notify_all();
    }
    if (!error.empty()) return 0;

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
        if (term != 0) trace("resume");
        awaiting_first_ = true;
        if (decision.enable) {
            passive_.store(false, std::memory_order_release);
            status_.store(ModuleStatus::service, std::memory_order_release);
            call_hook([&] { module_->enable(); });
        } else {
            passive_.store(true, std::memory_order_release);
            status_.store(ModuleStatus::passive, std::memory_order_release);
        }
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

std::uint64_t ModuleTask::serve(InputQueue& queue) {
    for (;;) {
        ACE_Message_Block* block = queue.take();
        if (block == nullptr) continue;  // a dequeue interrupted by a signal
        switch (block->msg_type()) {
            case ACE_Message_Block::MB_DATA: {
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
                    errors_.fetch_add(1, std::memory_order_relaxed);
                }
                // One writer at a time (the serving version's thread; versions hand over
                // through the decision mutex), so a plain store, not a locked add, suffices.
                handled_.store(handled_.load(std::memory_order_relaxed) + 1,
                               std::memory_order_relaxed);
                break;
            }
            case InputQueue::kEnable:
                block->release();
                passive_.store(false, std::memory_order_release);
                status_.store(ModuleStatus::service, std::memory_order_release);
                call_hook([&] { module_->enable(); });
                break;
            case InputQueue::kDisable:
                block->release();
                passive_.store(true, std::memory_order_release);
                status_.store(ModuleStatus::passive, std::memory_order_release);
                call_hook([&] { module_->disable(); });
                break;
            case InputQueue::kTerminate: {
                const std::uint64_t term = InputQueue::term_of(block);
                block->release();
                trace("get TERM message");
                trace("reach quiescent state");
                return term;
            }
            default:
                block->release();
                break;
        }
    }
}

}  // namespace nonstop::detail
