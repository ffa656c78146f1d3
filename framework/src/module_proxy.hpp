// The module-proxy (thesis 3.3.2, 4.2.4, figure 4.15, table 4.2): the stable, well-known port of
// one module name. It forwards each message to the current implementation's input queue,
// buffers during a swap, and carries out its side of the two-phase commit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "module_task.hpp"
#include "nonstop/config.hpp"
#include "nonstop/error.hpp"
#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"

namespace nonstop::detail {

class InputQueue;
class Library;

/// Quiescence did not come within the transaction's limit: the target votes no.
class Timeout : public Error {
public:
    using Error::Error;
};

class ModuleProxy {
public:
    using Task = std::shared_ptr<ModuleTask>;

    /// Where the proxy is in its life; each operation is accepted in one or two of these only
    /// (as OTP's sys accepts change_code only while suspended).
    enum class Phase {
        detached,  // no implementation yet: an addition being prepared
        attached,  // the first implementation is bound and accepts input, not yet started
        serving,   // the current implementation serves
        draining,  // prepared: input buffered (or refused), the old implementation drains
        swapped,   // committed: the new implementation is bound, not yet started
        aborted,   // the old implementation keeps the module, not yet resumed
        retired,   // removed: input refused for good
    };

    /// What happens to messages that arrive while the implementation drains.
    enum class Intake { buffer, refuse };

    /// The old implementation's checkpoint, once it is quiescent.
    struct Checkpoint {
        State state;
        std::chrono::nanoseconds quiescence{0};
        bool converted = false;  // put_state_for(down_to) gave it
        /// Handed over directly to the successor prepare() was given, which has started with
        /// `handed` (then `state` is empty).
        bool handed_over = false;
        ModuleTask::Handed handed;
        std::uint64_t handled = 0, failed = 0;  // what the old version served, in all
    };

    /// `limits`: the queue bounds and the hooks' time limits (the runtime's Config, which
    /// outlives every proxy).
    ModuleProxy(std::string name, const Config& limits, ModuleHost& host);
    ~ModuleProxy();
    ModuleProxy(const ModuleProxy&) = delete;
    ModuleProxy& operator=(const ModuleProxy&) = delete;

    const std::string& name() const { return name_; }

    /// Accepts a message for this module (putQueue). False when the proxy refuses input (the
    /// module is being removed or has been) or the message is larger than a whole queue; the
    /// reason is then in last_send_error(). Blocks only while the target queue is full.
    bool put(Message&& m);
    /// The same without waiting: false when the queue is full too (the timer's ticks and event
    /// notifications, which must never stall their sender, count what is refused).
    bool try_put(Message&& m);
    /// A timer tick that found the queue full and was dropped (ticks coalesce).
    void note_tick_coalesced() { ticks_coalesced_.fetch_add(1, std::memory_order_relaxed); }
    void note_notification_dropped() {
        notifications_dropped_.fetch_add(1, std::memory_order_relaxed);
    }

    /// A snapshot of the module behind this proxy.
    ModuleInfo info() const;
    /// How long the current implementation has been inside its current call into module code
    /// (zero when it is not): the watchdog's cheap test, with no snapshot built.
    std::chrono::nanoseconds busy_for() const;
    /// The current implementation's library (null before the first is attached).
    std::shared_ptr<Library> library() const;
    /// Runs the current implementation's audit() in its thread between two messages and waits
    /// for it up to `limit` (a time-out is an unhealthy result). Empty while the module is in
    /// a transaction or not serving: nothing was asked.
    std::optional<AuditResult> audit(std::chrono::milliseconds limit);
    /// True when the module's implementation is the calling thread's: it cannot be made to
    /// wait for its own quiescence.
    bool called_from_own_thread() const;

    /// A checkpoint of the serving implementation, taken between two of its messages
    /// (ModuleTask::checkpoint_now); throws Error. Returns its version too.
    std::pair<State, std::string> checkpoint_now(std::chrono::milliseconds limit);

    /// Operator enable/disable (EnableModule/DisableModule), serving only; throws Error.
    void enable(std::uint64_t transaction);
    void disable(std::uint64_t transaction);

    // --- The proxy's side of a transaction, in this order; each throws Error when called in
    // --- the wrong phase.

    /// A new implementation of this module from `library`, its thread started for
    /// `transaction`; the caller then waits for its initialize().
    Task create(std::shared_ptr<Library> library, std::uint64_t transaction);
    /// Addition: binds the first implementation and opens the input queue (loadModuleImp).
    /// detached → attached. Messages are accepted from now on; they wait until start().
    void attach(Task task);
    /// syn_replace_prepare, serving → draining: buffer (or refuse) new input, make the
    /// implementation passive, append the termination message, wait until it is served within
    /// `timeout` (throws Timeout), and for a replacement (buffer) checkpoint (throws Error).
    /// begin_prepare() and await_prepared() in one call.
    Checkpoint prepare(std::chrono::milliseconds timeout, Intake intake, std::uint64_t transaction);
    /// prepare() in two halves, so that one thread can drain many modules at once: the first
    /// (serving → draining) returns at once, the second waits as prepare() does, `timeout`
    /// counted from the first.
    /// A rollback passes `down_to`, the older version's state schema: the checkpoint is asked
    /// of put_state_for(down_to) first. With a `successor` (a replacement whose only vote is
    /// this checkpoint), the old version's thread starts it on the buffered input as soon as
    /// its checkpoint is taken (ModuleTask::hand_over_at); start() then only records it. It
    /// gets the checkpoint by move unless the release keeps it (at most `keep` bytes).
    void begin_prepare(Intake intake, std::uint64_t transaction,
                       std::optional<std::uint32_t> down_to = std::nullopt,
                       Task successor = nullptr, std::optional<std::size_t> keep = std::nullopt);
    Checkpoint await_prepared(std::chrono::milliseconds timeout);
    /// syn_replace_commit, draining → swapped: hot-swaps to `fresh`. The old
    /// implementation stays parked until settle() (or revert()), so that a new version that
    /// misses its start can still hand the module back.
    void swap(Task fresh);
    /// After the start of a swapped-in version: tells the old one to end and returns it, for
    /// the caller to end off the blackout.
    Task settle();
    /// After the start of a swapped-in version that must not serve (its enable() missed its
    /// limit, or its group aborted): the old version takes the module back and serves the
    /// buffered queue, which the new one never touched, after taking `own` (its checkpoint,
    /// given back) if set. Returns the new one.
    Task revert(std::uint64_t transaction, StateHandover own = nullptr);
    /// syn_replace_abort, draining → aborted: the old implementation will serve the buffered
    /// queue after its own, once started.
    void abort(std::uint64_t transaction);
    /// attached, swapped or aborted → serving: the current implementation serves everything
    /// accepted so far. A swapped-in one first restores `state` (get_state, or take_state when
    /// given) and enable()s in its own thread, and with `hold` waits for go(); an aborted one
    /// takes `state` back (its own checkpoint) first, if set.
    void start(std::uint64_t transaction, bool hold = false, StateHandover state = {});
    /// Removal after quiescence, draining → retired: tells the implementation to end and
    /// returns it.
    Task retire();
    /// Forced removal of an implementation that never reached quiescence (draining → retired):
    /// abandons it; its unserved messages are dropped. Returns the task and how many messages
    /// were dropped; throws Error when the implementation is not inside a handler (it is not
    /// stuck: the caller should wait for quiescence instead).
    std::pair<Task, std::uint64_t> force_retire();
    /// Forced replacement (draining → swapped, no checkpoint): abandons the stuck
    /// implementation and puts its unserved messages ahead of the buffered ones for `fresh`.
    /// Returns the stuck task. Throws Error as force_retire() does.
    Task force_swap(Task fresh);

    /// Messages buffered since the latest prepare.
    std::uint64_t buffered() const { return buffered_.load(std::memory_order_acquire); }
    /// First buffered message → first message the current implementation served, waiting for
    /// the latter until `deadline`; empty if nothing was buffered or served in time.
    std::optional<std::chrono::nanoseconds> blackout(Clock::time_point deadline) const;

private:
    bool put(Message&& m, bool wait_for_room);
    std::shared_ptr<InputQueue> new_queue() const;
    void expect_i(Phase expected, const char* operation) const;
    void abandon_stuck_i(const char* operation);
    void retarget_i(std::shared_ptr<InputQueue> queue);
    void trace(Step step, const Task& task, std::uint64_t transaction);
    void note_buffered();

    const std::string name_;
    const Config& limits_;
    const std::size_t unit_;  // what a message costs in a queue besides its payload
    ModuleHost& host_;

    // Hot path: senders read target_ inside a counted section, so that retarget_i() can wait
    // until no sender still writes to the old queue before the termination message goes in.
    // target_ is the queue's address with the parity of its generation in the low bit (queues
    // are at least 2-byte aligned); the parity selects the in-flight counter.
    // The counts are sharded over cache lines so that concurrent senders do not contend on
    // one counter (measured: 3 producers lost 15% of their throughput to a shared one).
    static constexpr std::size_t kShards = 16;
    struct alignas(64) Shard {
        std::atomic<long> inflight[2] = {0, 0};
    };
    // Read by every sender: kept on a cache line that nothing writes per message.
    alignas(64) std::atomic<std::uintptr_t> target_{0};
    std::atomic<bool> swapping_{false};
    Shard shards_[kShards];
    // Written during a swap, and per message by the consumer: away from the senders' line.
    alignas(64) std::atomic<std::uint64_t> buffered_{0};
    std::atomic<std::int64_t> first_buffered_ns_{0};
    ServiceCounters counters_;
    std::atomic<std::uint64_t> ticks_coalesced_{0};
    std::atomic<std::uint64_t> notifications_dropped_{0};

    mutable std::mutex mutex_;  // control path; functions named _i hold it
    Phase phase_ = Phase::detached;
    Task current_;
    Task previous_;  // the replaced implementation between swap() and settle()/revert()
    std::shared_ptr<InputQueue> queue_;  // where target_ points (null: refusing)
    bool enabled_ = true;
    bool was_enabled_ = true;
    std::uint64_t term_ = 0;
    bool handed_over_ = false;  // the latest prepare's successor was started by its predecessor
    struct Draining {           // between begin_prepare() and await_prepared()
        Task old;
        Task successor;
        Intake intake = Intake::buffer;
        Clock::time_point begin{};
    };
    Draining draining_;
};

const char* to_string(ModuleProxy::Phase phase);

}  // namespace nonstop::detail
