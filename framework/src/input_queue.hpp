// The input queue of one module implementation, and the swap buffer of a proxy: the same type,
// because the buffer a proxy fills during a swap becomes the input queue of whichever
// implementation serves next (thesis 4.4).
#pragma once

#include <ace/Condition_Thread_Mutex.h>
#include <ace/Message_Block.h>
#include <ace/Message_Queue.h>
#include <ace/Synch_Traits.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "nonstop/module.hpp"

namespace nonstop::detail {

/// An ACE_Message_Queue that hands its consumer several blocks per lock: with producers
/// contending for the lock, one acquisition per message is what the consumer pays most.
class BatchMessageQueue : public ACE_Message_Queue<ACE_MT_SYNCH> {
public:
    using ACE_Message_Queue<ACE_MT_SYNCH>::ACE_Message_Queue;
    /// Waits for the first block, then takes up to `max` without waiting, oldest first.
    /// Returns how many, or -1 (errno as dequeue_head) when deactivated or interrupted.
    int dequeue_batch(ACE_Message_Block** out, std::size_t max);
};

class InputQueue {
public:
    /// Kinds of block besides application messages (ACE's MB_DATA).
    static constexpr ACE_Message_Block::ACE_Message_Type kTerminate = ACE_Message_Block::MB_STOP;
    static constexpr ACE_Message_Block::ACE_Message_Type kEnable = ACE_Message_Block::MB_USER + 1;
    static constexpr ACE_Message_Block::ACE_Message_Type kDisable = ACE_Message_Block::MB_USER + 2;
    /// put_state() now, between two messages (a checkpoint the operator asked for).
    static constexpr ACE_Message_Block::ACE_Message_Type kCheckpoint =
        ACE_Message_Block::MB_USER + 3;
    static constexpr ACE_Message_Block::ACE_Message_Type kAudit = ACE_Message_Block::MB_USER + 4;

    /// Holds messages until their charges (payload plus unit(), see wrap) reach
    /// `capacity_bytes`; then put() blocks the sender.
    explicit InputQueue(std::size_t capacity_bytes);
    /// What a message costs besides its payload in a queue of these bounds.
    static std::size_t unit(std::size_t capacity, std::size_t capacity_bytes);
    ~InputQueue();
    InputQueue(const InputQueue&) = delete;
    InputQueue& operator=(const InputQueue&) = delete;

    /// Wraps a message in a data block for put(), charged `unit` besides its payload; the
    /// block owns the message (one allocation for both) until released. Throws std::bad_alloc.
    static ACE_Message_Block* wrap(Message&& m, std::size_t unit);
    /// Frees a data block that was never enqueued, with its message.
    static void discard(ACE_Message_Block* block);
    enum class Put { done, full, closed, too_large };
    /// Appends a data block, waiting for room until `deadline` (absolute; nullptr: forever,
    /// &ACE_Time_Value::zero: not at all). On full or closed the caller still owns the block.
    Put put(ACE_Message_Block* block, const ACE_Time_Value* deadline);
    /// Puts a control block (enable/disable/checkpoint/audit) ahead of every waiting message.
    void put_control_first(ACE_Message_Block::ACE_Message_Type type);
    /// Appends the termination message that ends this queue for its consumer.
    void put_terminate(std::uint64_t term);
    /// Blocks for the next block. The caller owns it; see message_of / term_of. Only the
    /// consumer calls it: blocks come out of the ACE queue in batches held here, in order.
    ACE_Message_Block* take();
    /// Blocks waiting, taken into a batch or not.
    std::size_t size();
    /// Takes every waiting application message out without waiting, oldest first; control
    /// blocks are dropped. For a forced replacement, whose stuck consumer takes no more (it is
    /// inside module code, not in take(), and stops before calling it again).
    std::vector<ACE_Message_Block*> drain();
    /// Puts `blocks` (oldest first) ahead of everything waiting, whatever the bounds. For a
    /// queue whose consumer has not started taking.
    void prepend(const std::vector<ACE_Message_Block*>& blocks);

    /// The message a data block carries, valid until the block is released.
    static Message& message_of(ACE_Message_Block* block);
    static std::uint64_t term_of(const ACE_Message_Block* block);

private:
    void put_control(ACE_Message_Block* block, bool first);

    static constexpr std::size_t kBatch = 64;

    const std::size_t capacity_;

    std::mutex control_mutex_;
    BatchMessageQueue queue_;
    // The consumer's current batch: batch_[next_, end_) are taken from queue_ but not yet
    // from take(). Written by the consumer only; `batched_` lets size() read it anywhere.
    ACE_Message_Block* batch_[kBatch] = {};
    std::size_t next_ = 0, end_ = 0;
    std::atomic<std::size_t> batched_{0};
};

}  // namespace nonstop::detail
