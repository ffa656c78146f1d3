#include "input_queue.hpp"

#include <cerrno>
#include <cstring>
#include <limits>

#include "nonstop/error.hpp"

namespace nonstop::detail {

// Every block accounts for one unit of the queue's byte counters, so its high-water mark is a
// message count. The block's base points at a heap Message that the consumer takes back.
InputQueue::InputQueue(std::size_t capacity) : capacity_(capacity), queue_(capacity, capacity) {}

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
    if (queue_.enqueue_tail(block, const_cast<ACE_Time_Value*>(deadline)) >= 0) return Put::done;
    return errno == EWOULDBLOCK ? Put::full : Put::closed;
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
    return block;
}

std::size_t InputQueue::size() { return queue_.message_count(); }

std::unique_ptr<Message> InputQueue::message_of(ACE_Message_Block* block) {
    return std::unique_ptr<Message>(reinterpret_cast<Message*>(block->base()));
}

std::uint64_t InputQueue::term_of(const ACE_Message_Block* block) { return block->msg_priority(); }

}  // namespace nonstop::detail
