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
    };

    /// `capacity`: messages the input queue or the swap buffer holds before senders block.
    ModuleProxy(std::string name, std::size_t capacity, ModuleHost& host);
    ~ModuleProxy();
    ModuleProxy(const ModuleProxy&) = delete;
    ModuleProxy& operator=(const ModuleProxy&) = delete;

    const std::string& name() const { return name_; }

    /// Accepts a message for this module (putQueue). False when the proxy refuses input (the
    /// module is being removed or has been). Blocks only while the target queue is full.
    bool put(Message&& m);

    /// A snapshot of the module behind this proxy.
    ModuleInfo info() const;
    /// True when the module's implementation is the calling thread's: it cannot be made to
    /// wait for its own quiescence.
    bool called_from_own_thread() const;

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
    Checkpoint prepare(std::chrono::milliseconds timeout, Intake intake, std::uint64_t transaction);
    /// First half of syn_replace_commit (draining): the checkpoint into `fresh`, which is not
    /// serving yet. Throws Error; nothing changes then.
    void restore(ModuleTask& fresh, const State& state);
    /// Second half of syn_replace_commit, draining → swapped: hot-swaps to `fresh` and tells
    /// the old implementation's thread to end. Returns the old task: destroying it joins that
    /// thread, which the caller does after the start, off the blackout.
    Task swap(Task fresh);
    /// syn_replace_abort, draining → aborted: the old implementation will serve the buffered
    /// queue after its own, once started.
    void abort(std::uint64_t transaction);
    /// attached, swapped or aborted → serving: the current implementation serves everything
    /// accepted so far.
    void start(std::uint64_t transaction);
    /// Removal after quiescence, draining → retired: ends the implementation and returns it.
    Task retire();

    /// Messages buffered since the latest prepare.
    std::uint64_t buffered() const { return buffered_.load(std::memory_order_acquire); }
    /// First buffered message → first message the current implementation served, waiting for
    /// the latter until `deadline`; empty if nothing was buffered or served in time.
    std::optional<std::chrono::nanoseconds> blackout(Clock::time_point deadline) const;

private:
    void expect_i(Phase expected, const char* operation) const;
    void retarget_i(std::shared_ptr<InputQueue> queue);
    void trace(Step step, const Task& task, std::uint64_t transaction);
    void note_buffered();

    const std::string name_;
    const std::size_t capacity_;
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

    mutable std::mutex mutex_;  // control path; functions named _i hold it
    Phase phase_ = Phase::detached;
    Task current_;
    std::shared_ptr<InputQueue> queue_;  // where target_ points (null: refusing)
    bool enabled_ = true;
    bool was_enabled_ = true;
    std::uint64_t term_ = 0;
};

const char* to_string(ModuleProxy::Phase phase);

}  // namespace nonstop::detail
