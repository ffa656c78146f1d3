#include "input_queue.hpp"

#include <cerrno>
#include <cstring>
#include <limits>

#include "nonstop/error.hpp"

namespace nonstop::detail {

// Every block accounts for one unit of the queue's byte counters, so its high-water mark is a
// message count. The block's base points at a heap Message that the consumer takes back.
InputQueue::InputQueue(std::size_t capacity, std::size_t capacity_bytes)
    : capacity_(capacity), capacity_bytes_(capacity_bytes), queue_(capacity, capacity) {}

namespace {
std::size_t bytes_of(ACE_Message_Block* block) {
    const auto* m = reinterpret_cast<const Message*>(block->base());
    return m->payload.size() + m->sender.size();
}
}  // namespace

InputQueue::~InputQueue() {
    ACE_Message_Block* block = nullptr;
    ACE_Time_Value now{0};
    while (queue_.message_count() > 0 && queue_.dequeue_head(block, &now) >= 0) {
        if (block->msg_type() == ACE_Message_Block::MB_DATA) message_of(block);
        block->release();
    }
}

ACE_Message_Block* InputQueue::wrap(Message&& m) {
    auto* message = new Message(std::move(m));
    return new ACE_Message_Block(reinterpret_cast<const char*>(message), 1);
}

void InputQueue::discard(ACE_Message_Block* block) {
    message_of(block);  // deletes the message
    block->release();
}

InputQueue::Put InputQueue::put(ACE_Message_Block* block, const ACE_Time_Value* deadline) {
    const std::size_t size = bytes_of(block);
    if (size > capacity_bytes_) return Put::too_large;
    // The byte bound is a reservation: past it the sender is told the queue is full and
    // retries as for a full message count (an empty queue always takes one message).
    if (bytes_.fetch_add(size, std::memory_order_acq_rel) + size > capacity_bytes_ &&
        messages_.load(std::memory_order_acquire) > 0) {
        bytes_.fetch_sub(size, std::memory_order_acq_rel);
        return Put::full;
    }
    messages_.fetch_add(1, std::memory_order_acq_rel);
    if (queue_.enqueue_tail(block, const_cast<ACE_Time_Value*>(deadline)) >= 0) return Put::done;
    const bool full = errno == EWOULDBLOCK;
    messages_.fetch_sub(1, std::memory_order_acq_rel);
    bytes_.fetch_sub(size, std::memory_order_acq_rel);
    return full ? Put::full : Put::closed;
}

void InputQueue::count_out(ACE_Message_Block* block) {
    if (block->msg_type() != ACE_Message_Block::MB_DATA) return;
    messages_.fetch_sub(1, std::memory_order_acq_rel);
    bytes_.fetch_sub(bytes_of(block), std::memory_order_acq_rel);
}

std::vector<ACE_Message_Block*> InputQueue::drain() {
    std::vector<ACE_Message_Block*> out;
    ACE_Message_Block* block = nullptr;
    ACE_Time_Value now{0};
    while (queue_.message_count() > 0 && queue_.dequeue_head(block, &now) >= 0) {
        count_out(block);
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
        messages_.fetch_add(1, std::memory_order_acq_rel);
        bytes_.fetch_add(bytes_of(*it), std::memory_order_acq_rel);
        if (queue_.enqueue_head(*it) < 0) {
            count_out(*it);
            discard(*it);
        }
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
    ACE_Message_Block* block = nullptr;
    if (queue_.dequeue_head(block) < 0) return nullptr;
    count_out(block);
    return block;
}

std::size_t InputQueue::size() { return queue_.message_count(); }

std::unique_ptr<Message> InputQueue::message_of(ACE_Message_Block* block) {
    return std::unique_ptr<Message>(reinterpret_cast<Message*>(block->base()));
}

std::uint64_t InputQueue::term_of(const ACE_Message_Block* block) { return block->msg_priority(); }

}  // namespace nonstop::detail
