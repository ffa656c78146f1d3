#include "input_queue.hpp"

#include <ace/Malloc_Allocator.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>

#include "nonstop/error.hpp"

namespace nonstop::detail {

// One bound covers both the message count and the bytes, inside the ACE queue's own lock (no
// counter of ours for senders to contend on): a data block is charged its payload plus a unit,
// capacity_bytes / capacity, and the high-water mark is capacity_bytes. So a queue holds at most
// `capacity` messages, and at most `capacity_bytes` bytes of payload. The block's base points at
// a heap Message that the consumer takes back.
namespace {

// A message travels in one allocation: the ACE_Message_Block the queue links, the
// ACE_Data_Block that carries its charge, and the Message itself (the block's base), instead
// of three. The block is first, so the address ACE hands back to free() is the envelope's.
struct Envelope {
    alignas(ACE_Message_Block) unsigned char block[sizeof(ACE_Message_Block)];
    alignas(ACE_Data_Block) unsigned char data[sizeof(ACE_Data_Block)];
    alignas(Message) unsigned char message[sizeof(Message)];
};

// ACE destroys a released block and then gives its memory to the block's allocator: the data
// block (DONT_DELETE: ACE leaves it alone) and the message go with it, in one free.
class EnvelopeAllocator final : public ACE_New_Allocator {
public:
    void free(void* ptr) override {
        auto* envelope = static_cast<Envelope*>(ptr);
        std::launder(reinterpret_cast<ACE_Data_Block*>(envelope->data))->~ACE_Data_Block();
        std::launder(reinterpret_cast<Message*>(envelope->message))->~Message();
        delete envelope;
    }
};

EnvelopeAllocator envelope_allocator;

}  // namespace

int BatchMessageQueue::dequeue_batch(ACE_Message_Block** out, std::size_t max) {
    ACE_GUARD_RETURN(ACE_Thread_Mutex, guard, this->lock_, -1);
    if (this->state_ == ACE_Message_Queue_Base::DEACTIVATED) {
        errno = ESHUTDOWN;
        return -1;
    }
    if (this->wait_not_empty_cond(nullptr) == -1) return -1;
    std::size_t n = 0;
    while (n < max && !this->is_empty_i() && this->dequeue_head_i(out[n]) != -1) ++n;
    return static_cast<int>(n);
}

InputQueue::InputQueue(std::size_t capacity_bytes)
    : capacity_(std::max<std::size_t>(capacity_bytes, 1)), queue_(capacity_, capacity_) {}

std::size_t InputQueue::unit(std::size_t capacity, std::size_t capacity_bytes) {
    return std::max<std::size_t>(1, capacity_bytes / std::max<std::size_t>(capacity, 1));
}

InputQueue::~InputQueue() {
    for (std::size_t i = next_; i < end_; ++i) batch_[i]->release();
    ACE_Message_Block* block = nullptr;
    ACE_Time_Value now{0};
    while (queue_.message_count() > 0 && queue_.dequeue_head(block, &now) >= 0) block->release();
}

ACE_Message_Block* InputQueue::wrap(Message&& m, std::size_t unit) {
    const std::size_t charge = unit + m.payload.size() + m.sender.size();
    auto* envelope = new Envelope;
    auto* message = new (envelope->message) Message(std::move(m));
    auto* data = new (envelope->data)
        ACE_Data_Block(charge, ACE_Message_Block::MB_DATA, reinterpret_cast<const char*>(message),
                       nullptr, nullptr, ACE_Message_Block::DONT_DELETE, nullptr);
    return new (envelope->block)
        ACE_Message_Block(data, ACE_Message_Block::DONT_DELETE, &envelope_allocator);
}

void InputQueue::discard(ACE_Message_Block* block) { block->release(); }

InputQueue::Put InputQueue::put(ACE_Message_Block* block, const ACE_Time_Value* deadline) {
    if (block->size() > capacity_) return Put::too_large;
    if (queue_.enqueue_tail(block, const_cast<ACE_Time_Value*>(deadline)) >= 0) return Put::done;
    return errno == EWOULDBLOCK ? Put::full : Put::closed;
}

std::vector<ACE_Message_Block*> InputQueue::drain() {
    std::vector<ACE_Message_Block*> out;
    for (; next_ < end_; ++next_) {
        if (batch_[next_]->msg_type() == ACE_Message_Block::MB_DATA)
            out.push_back(batch_[next_]);
        else
            batch_[next_]->release();
    }
    batched_.store(0, std::memory_order_relaxed);
    ACE_Message_Block* block = nullptr;
    ACE_Time_Value now{0};
    while (queue_.message_count() > 0 && queue_.dequeue_head(block, &now) >= 0) {
        if (block->msg_type() == ACE_Message_Block::MB_DATA)
            out.push_back(block);
        else
            block->release();
    }
    return out;
}

void InputQueue::prepend(const std::vector<ACE_Message_Block*>& blocks) {
    std::lock_guard lock(control_mutex_);
    queue_.high_water_mark(std::numeric_limits<std::size_t>::max());
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) {
        if (queue_.enqueue_head(*it) < 0) discard(*it);
    }
    queue_.high_water_mark(capacity_);
}

void InputQueue::put_control(ACE_Message_Block* block, bool first) {
    // Control blocks never wait for room: the queue may be full behind a busy handler, and the
    // swap that appends them must still end within its time limit. The high-water mark is
    // lifted just for this insert; a sender racing into that moment adds one message more.
    std::lock_guard lock(control_mutex_);
    queue_.high_water_mark(std::numeric_limits<std::size_t>::max());
    const int result = first ? queue_.enqueue_head(block) : queue_.enqueue_tail(block);
    queue_.high_water_mark(capacity_);
    if (result < 0) {
        block->release();
        throw Error("cannot append a control message to a deactivated queue");
    }
}

void InputQueue::put_control_first(ACE_Message_Block::ACE_Message_Type type) {
    put_control(new ACE_Message_Block(static_cast<size_t>(0), type), true);
}

void InputQueue::put_terminate(std::uint64_t term) {
    auto* block = new ACE_Message_Block(static_cast<size_t>(0), kTerminate);
    block->msg_priority(static_cast<unsigned long>(term));  // the block carries no data
    put_control(block, false);
}

ACE_Message_Block* InputQueue::take() {
    if (next_ == end_) {
        const int n = queue_.dequeue_batch(batch_, kBatch);
        if (n <= 0) return nullptr;
        next_ = 0;
        end_ = static_cast<std::size_t>(n);
    }
    batched_.store(end_ - next_ - 1, std::memory_order_relaxed);
    return batch_[next_++];
}

std::size_t InputQueue::size() {
    return queue_.message_count() + batched_.load(std::memory_order_relaxed);
}

Message& InputQueue::message_of(ACE_Message_Block* block) {
    return *std::launder(reinterpret_cast<Message*>(block->base()));
}

std::uint64_t InputQueue::term_of(const ACE_Message_Block* block) { return block->msg_priority(); }

}  // namespace nonstop::detail
