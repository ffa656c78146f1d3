// One module implementation running as an ACE task: its thread, its service loop, its states
// (thesis figure 4.14). The framework owns the loop; the module only sees the Module calls.
// Every call into module code runs in this thread, so a hook that hangs holds only this
// thread: whoever waits for it waits with a deadline and abandons the instance past it.
#pragma once

#include <ace/Task.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
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
    std::atomic<std::uint64_t> failed{0};   // handle() threw: served, but not counted handled
    mutable std::mutex failure_mutex;
    std::string last_failure;  // the latest failure's text
    std::chrono::system_clock::time_point last_failure_time{};
};

/// A checkpoint on its way to a new version. `kept`: someone holds it too (a release, for a
/// rollback; the store's saved checkpoints), so the module restores it by get_state(), which
/// leaves it intact. `given`: the only copy, moved into take_state(); `returned`: given back to
/// the version that put it, after an abort. Implicit from nullptr (nothing to restore) and
/// from a kept checkpoint.
struct StateHandover {
    StateHandover() = default;
    StateHandover(std::nullptr_t) {}
    StateHandover(std::shared_ptr<const State> state) : kept(std::move(state)) {}
    static StateHandover give(std::shared_ptr<State> state, bool returned = false) {
        StateHandover h;
        h.given = std::move(state);
        h.returned = returned;
        return h;
    }
    explicit operator bool() const { return kept || given; }

    std::shared_ptr<const State> kept;
    std::shared_ptr<State> given;
    bool returned = false;
};

class ModuleTask : public ACE_Task<ACE_MT_SYNCH> {
public:
    /// Creates the instance through the library's factory (throws Error); no thread yet.
    ModuleTask(ModuleHost& host, std::string name, std::shared_ptr<Library> library,
               ServiceCounters& counters);
    /// Ends the thread if it still runs, destroys the instance, releases the library. Never
    /// called on an abandoned task whose thread still runs (see abandoned()).
    ~ModuleTask() override;

    /// Starts the thread for transaction `transaction`; it runs initialize() and then waits to
    /// be started (term 0).
    void launch(std::uint64_t transaction);
    /// Blocks until initialize() has returned; throws Error with its failure, or when it has
    /// not returned within `limit` (the task is then abandoned).
    void wait_initialized(std::chrono::milliseconds limit);

    /// A fresh termination number for the next termination message, issued by `transaction`
    /// (the steps the loop takes at that message are attributed to it). With `checkpoint`, the
    /// loop calls put_state() in its own thread as soon as it takes that message.
    /// With `down_to` (a rollback), put_state_for(*down_to) is asked first.
    std::uint64_t next_term(std::uint64_t transaction, bool checkpoint,
                            std::optional<std::uint32_t> down_to = std::nullopt);
    /// When the service loop took termination message `term` (everything before it served:
    /// quiescence); empty if it has not yet.
    std::optional<Clock::time_point> term_taken(std::uint64_t term);
    /// Waits until the loop is parked at `term` (after the checkpoint, if one was asked for).
    bool wait_quiescent(std::uint64_t term, Clock::time_point deadline);
    /// The checkpoint taken at the latest termination message; throws Error when put_state()
    /// threw. `converted`: put_state_for() gave it.
    State take_checkpoint(bool* converted = nullptr);

    /// Who takes the module directly from this task's thread (see hand_over_at()).
    struct Successor {
        std::shared_ptr<ModuleTask> task;
        std::shared_ptr<InputQueue> queue;  // the buffered input it serves
        std::uint64_t transaction = 0;
        /// A checkpoint of at most this many bytes is kept (the release keeps it too: the
        /// successor restores a copy by get_state()); a larger one, or with none, is given by
        /// move (take_state()).
        std::optional<std::size_t> keep;
    };
    /// The checkpoint a hand-over gave the successor. Given, the bytes are the successor's
    /// (not to be read by anyone else): what they were is noted here.
    struct Handed {
        std::shared_ptr<State> state;
        bool given = false;
        std::uint32_t schema = 0;
        std::size_t bytes = 0;
    };
    /// Arms a direct hand-over at termination message `term` (which must ask for a
    /// checkpoint): once put_state() returned there, this task's thread starts `successor` on
    /// its queue with the checkpoint itself, rather than waking the upgrader to do it, so that
    /// the swap's blackout holds one thread wake-up fewer. For a transaction whose only vote
    /// is this checkpoint; a put_state() that throws hands nothing over.
    void hand_over_at(std::uint64_t term, Successor successor);
    /// Takes back the armed hand-over if it has not happened. False when it has: the successor
    /// has the checkpoint (handed_checkpoint()) and serves.
    bool disarm_hand_over();
    /// The checkpoint the hand-over gave the successor; `converted` as take_checkpoint().
    Handed handed_checkpoint(bool* converted = nullptr);
    /// What the module had served (handled, failed) when it took termination message `term`
    /// (the latest one).
    std::pair<std::uint64_t, std::uint64_t> served_at_term();
    /// Asks for an audit between two messages (a control block ahead of `queue`'s messages);
    /// returns its number for wait_audit().
    std::uint64_t request_audit(InputQueue& queue);
    /// The result of audit `number`; empty when it has not run by `deadline`.
    std::optional<AuditResult> wait_audit(std::uint64_t number, Clock::time_point deadline);
    /// A checkpoint of the serving implementation: put_state() runs in its own thread between
    /// two messages (ahead of those waiting). Throws Error when it threw, when the module is
    /// not serving, or when it did not come back within `limit` (the module is then busy; the
    /// late checkpoint is dropped).
    State checkpoint_now(std::chrono::milliseconds limit);
    /// Parked at `term` after an aborted transaction: says so, and resumes at start().
    void hold(std::uint64_t transaction);
    /// Resumes the loop parked at `term`: serve `queue` next, active or passive; first
    /// take_state(`own`) when an aborted transaction gives the version its own checkpoint back
    /// (a throw there is counted as a handler error, and service goes on).
    void resume(std::uint64_t term, std::shared_ptr<InputQueue> queue, bool enable,
                std::uint64_t transaction, StateHandover own = nullptr);
    /// The first start: runs the side effects initialize() asked for, in the caller's thread so
    /// they are in place when the transaction reports, then resumes at term 0 on `queue`.
    /// The loop restores `state` (when set: get_state() or take_state()), enable()s and
    /// serves; with `hold` it waits after enable() for go().
    void start(std::shared_ptr<InputQueue> queue, std::uint64_t transaction, bool hold,
               StateHandover state = {}, std::string from_version = {});
    /// Waits until get_state() and enable() of the latest start have returned. False when
    /// get_state() threw (start_error() says why; the task waits, untouched) or past `limit`
    /// (the task is then abandoned). Either way it never takes a message from its queue.
    bool wait_enabled(std::chrono::milliseconds limit);
    /// Runs get_state(state) alone, in the calling thread, on an instance that initialized and
    /// was never started (the preflight child tries a checkpoint this way); returns what it
    /// threw, empty when nothing.
    std::string try_state(const State& state);
    std::string start_error();
    /// A start that could not be made (its predecessor's hand-over failed): wait_enabled()
    /// returns false and start_error() says `why`.
    void refuse_start(std::string why);
    /// Lets a task held after enable() serve.
    void go();
    /// A task held after it took its predecessor's checkpoint by move (take_state), whose group
    /// aborted: asks it, in its own thread, for its state back (put_state_for(`schema`), the
    /// predecessor's schema, else put_state()), so that the predecessor resumes with it. Empty
    /// when the task is not held, the hook threw, or it did not return within `limit`.
    std::optional<State> give_state_back(std::uint32_t schema, std::chrono::milliseconds limit);
    /// Decides that the loop ends at `term`: terminate() runs, the instance is destroyed in
    /// this thread, and the thread exits. Nothing more once finish_at() armed it.
    void finish(std::uint64_t term);
    /// A removal: decides the end at termination message `term` before the loop reaches it,
    /// so that the loop goes on to terminate() without waiting to be told (one thread wake-up
    /// fewer). wait_quiescent() then also succeeds once the thread has ended there.
    void finish_at(std::uint64_t term);
    /// Takes back what finish_at() decided if the loop has not reached `term`; false when it
    /// has (it is ending: the removal stands).
    bool disarm_finish(std::uint64_t term);
    /// Waits until the thread has exited (after finish()); false past `deadline`.
    bool wait_exited(Clock::time_point deadline);
    /// Waits for the thread to exit (after finish()).
    void join();
    /// Lets the thread end without anyone joining it (a task left to the end of the process).
    void detach();
    /// Ends a task that waits with nothing decided (never started, or held after enable()):
    /// terminate() runs and the instance is destroyed, in its thread.
    void discard();

    /// Passive now: Context::send refuses at once; disable() runs in the module thread next.
    void set_passive(InputQueue& queue);
    void set_active(InputQueue& queue);
    bool passive() const { return passive_.load(std::memory_order_acquire); }

    /// Gives up on this instance: its thread, if it ever returns from module code, exits
    /// without calling it again; its sends are refused. The caller keeps the task (and so its
    /// library) alive until the thread has exited.
    void abandon();
    bool abandoned() const { return abandoned_.load(std::memory_order_acquire); }
    /// True once the thread has ended (or never started).
    bool exited();

    /// Side effects a not-yet-started implementation asks for (publish, subscribe, timer)
    /// wait until it starts, so an aborted replacement leaves none behind.
    void defer_or_run(std::function<void()> action);

    ModuleStatus status() const { return status_.load(std::memory_order_acquire); }
    const std::string& name() const { return name_; }
    const Library& library() const { return *library_; }
    const std::shared_ptr<Library>& shared_library() const { return library_; }
    const std::string& version() const;
    ModuleHost& host() { return host_; }
    Context& context() { return context_; }
    std::size_t queue_depth();
    /// The queue the loop serves now.
    std::shared_ptr<InputQueue> queue();
    /// Waits until the first message after the latest resume is taken from the queue, and
    /// returns when that was; empty if it did not happen by `deadline`.
    std::optional<Clock::time_point> wait_first_served(Clock::time_point deadline);
    /// How long the module's code has been running in its current call (handle() or a hook),
    /// and which call; zero when it is not in module code.
    std::chrono::nanoseconds busy_for(const char** in = nullptr) const;

    int svc() override;
    /// The task whose thread is calling, or null outside module threads: the upgrader refuses
    /// to make a module wait for its own quiescence from inside its own handler.
    static const ModuleTask* calling();
    /// Advances the coarse clock that busy_for() measures with (the watchdog, each period).
    static void advance_clock();

private:
    struct Decision {
        bool finish = false;
        std::shared_ptr<InputQueue> queue;
        bool enable = false;
        bool hold = false;
        StateHandover state;  // get_state() or take_state() before serving, when set
        std::string from_version;
        /// The loop ends at its term.
        static Decision end() { return Decision{true, nullptr, false, false, nullptr, {}}; }
    };
    enum class Enabling { idle, enabling, enabled, refused, abandoned };
    enum class Begin { serve, parked, stop };

    bool start_thread();
    std::optional<std::uint64_t> serve(InputQueue& queue);
    void initialize();
    void run_loop();
    void serve_message(ACE_Message_Block* block);
    Begin begin_service(const Decision& decision);
    bool restore(const Decision& decision);
    std::string put_state_hook(std::optional<std::uint32_t> down_to, std::optional<State>& state,
                               bool& converted);
    void checkpoint_at(std::uint64_t term);
    void hand_over(const Successor& successor, const Handed& handed);
    void checkpoint_live();
    void audit();
    void end_service();
    void trace(Step step);
    void trace(Step step, std::uint64_t transaction);
    void note_failure(const char* where, const std::string& what);
    template <class F>
    bool call_module(const char* where, F&& call);
    template <class F>
    std::string call_hook(const char* where, F&& call);

    ModuleHost& host_;
    std::string name_;
    std::shared_ptr<Library> library_;
    Module* module_ = nullptr;
    Context context_;
    ServiceCounters& counters_;

    std::atomic<bool> passive_{true};
    std::atomic<bool> abandoned_{false};
    std::atomic<ModuleStatus> status_{ModuleStatus::initializing};
    std::atomic<std::uint64_t> terms_issued_{0};
    // The transaction whose steps this task takes now: set with each launch and termination
    // number, read by the loop when it traces.
    std::atomic<std::uint64_t> transaction_{0};
    // When the module's code was entered (steady clock, ns) and which call; 0: not in it.
    std::atomic<std::int64_t> busy_since_ns_{0};
    std::atomic<const char*> busy_in_{""};

    bool awaiting_first_ = false;  // loop thread only

    std::mutex mutex_;
    std::condition_variable cv_;
    bool launched_ = false;
    bool pooled_ = false;                     // runs on a ThreadPool thread (set before it starts)
    bool thread_done_ = false;                // that thread has left the task for good
    std::optional<pthread_t> ending_thread_;  // it ends instead of parking: join() joins it
    bool detached_ = false;                   // nobody will join: detach it instead
    bool initialized_ = false;
    bool exited_ = false;
    bool go_ = false;
    Enabling enabling_ = Enabling::idle;
    std::string init_error_;
    std::uint64_t reached_term_ = 0;
    std::map<std::uint64_t, Decision> decisions_;
    bool retiring_ = false;                          // finish_at() decided the end
    bool held_ = false;                              // waiting for go() after enable()
    std::optional<std::uint32_t> give_back_schema_;  // give_state_back() asked, not answered
    std::optional<State> given_back_;
    bool give_back_done_ = false;
    std::uint64_t term_seen_ = 0;  // the latest termination message taken
    Clock::time_point term_seen_at_{};
    std::uint64_t checkpoint_term_ = 0;     // the one at which put_state() is due
    std::optional<std::uint32_t> down_to_;  // put_state_for() first, at checkpoint_term_
    bool converted_ = false;
    std::optional<State> checkpoint_;
    std::uint64_t audits_asked_ = 0;
    std::uint64_t audits_done_ = 0;
    AuditResult audit_;
    std::string checkpoint_error_;
    Successor successor_;  // armed for successor_term_
    std::uint64_t successor_term_ = 0;
    bool handed_over_ = false;
    Handed handed_;
    std::uint64_t handled_at_term_ = 0, failed_at_term_ = 0;
    std::uint64_t live_asked_ = 0;  // checkpoint_now() requests, and the latest answered
    std::uint64_t live_done_ = 0;
    std::optional<State> live_state_;
    std::string live_error_;
    std::string start_error_;
    std::shared_ptr<InputQueue> queue_;
    bool started_ = false;
    std::vector<std::function<void()>> deferred_;
    Clock::time_point first_served_{};
    bool first_served_set_ = false;
};

}  // namespace nonstop::detail
