// The module-proxy (thesis 3.3.2, 4.2.4, figure 4.15, table 4.2): the stable, well-known port of
// one module name. It forwards each message to the current implementation's input queue,
// buffers during a swap, and carries out its side of the two-phase commit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "nonstop/module.hpp"
#include "nonstop/module_info.hpp"

namespace nonstop {

namespace detail {
class InputQueue;
class ModuleTask;
}  // namespace detail

class ModuleProxy {
public:
    using Task = std::shared_ptr<detail::ModuleTask>;

    /// What happens to messages that arrive while the implementation drains.
    enum class Intake { buffer, refuse };

    /// The proxy's answer to CanCommit (thesis 3.7.1).
    struct Vote {
        bool yes = false;
        bool timed_out = false;  // no because quiescence did not come within the limit
        std::string reason;      // one sentence, when no
        State state;         // the checkpoint, when yes
        std::chrono::nanoseconds quiescence{0};
    };

    /// `capacity`: messages the input queue or the swap buffer holds before senders block.
    ModuleProxy(std::string name, std::size_t capacity);
    ~ModuleProxy();
    ModuleProxy(const ModuleProxy&) = delete;
    ModuleProxy& operator=(const ModuleProxy&) = delete;

    const std::string& name() const { return name_; }

    /// Accepts a message for this module (putQueue). False when the proxy is closed (the
    /// module is being removed or has been). Blocks only while the target queue is full.
    bool put(Message&& m);

    /// A snapshot of the module behind this proxy.
    ModuleInfo info() const;

    /// Operator enable/disable (EnableModule/DisableModule). Throws Error during a transaction.
    void enable();
    void disable();
    bool enabled() const;

    // --- The proxy's side of a transaction; the Upgrader calls these, one transaction at a
    // --- time per proxy.

    /// Addition: binds the first implementation and opens the input queue (loadModuleImp).
    /// Messages may be accepted from now on; they wait until start().
    void attach(Task task);
    /// syn_replace_prepare: buffer (or refuse) new input, make the implementation passive,
    /// append the termination message, wait until it is served within `timeout`, and, for a
    /// replacement (buffer), checkpoint; a removal (refuse) takes no checkpoint.
    /// Throws Error when the module is already in a transaction.
    Vote prepare(std::chrono::milliseconds timeout, Intake intake);
    /// First half of syn_replace_commit: the checkpoint into the new implementation, which is
    /// not serving yet. Returns the error text, empty on success; nothing changes on error.
    std::string restore(detail::ModuleTask& fresh, const State& state);
    /// Second half of syn_replace_commit: hot-swaps to `fresh` and tells the old
    /// implementation's thread to end. Returns the old task: destroying it joins that thread,
    /// which the caller does after the start, off the blackout.
    Task swap(Task fresh);
    /// Starts the current implementation on the queue of everything accepted so far.
    void start();
    /// syn_replace_abort: the old implementation serves the buffered queue after its own.
    void abort();
    /// Removal after a yes vote: ends the implementation; the proxy stays closed.
    Task retire();

    /// Messages buffered since the latest prepare, and when the first of them arrived.
    std::uint64_t buffered() const { return buffered_.load(std::memory_order_acquire); }
    std::chrono::steady_clock::time_point first_buffered() const;
    /// The implementation serving now (or being started).
    Task current() const;

private:
    void retarget(std::shared_ptr<detail::InputQueue> queue);
    void note_buffered();

    const std::string name_;
    const std::size_t capacity_;

    // Hot path: senders read target_ inside a counted section, so that retarget() can wait
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
    alignas(64) std::atomic<std::uint64_t> handled_{0};
    std::atomic<std::uint64_t> errors_{0};

    mutable std::mutex mutex_;  // control path
    Task current_;
    std::shared_ptr<detail::InputQueue> queue_;  // where target_ points (null: closed)
    bool enabled_ = true;
    bool in_transaction_ = false;
    bool was_enabled_ = true;
    std::uint64_t term_ = 0;

    friend class detail::ModuleTask;
};

}  // namespace nonstop
