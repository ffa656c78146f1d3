#include "input_queue.hpp"

#include <cstring>

#include "nonstop/error.hpp"

namespace nonstop::detail {

// Every block accounts for one unit of the queue's byte counters, so its high-water mark is a
// message count. The block's base points at a heap Message that the consumer takes back.
InputQueue::InputQueue(std::size_t capacity) : queue_(capacity, capacity) {}

InputQueue::~InputQueue() {
    ACE_Message_Block* block = nullptr;
    ACE_Time_Value now{0};
    while (queue_.message_count() > 0 && queue_.dequeue_head(block, &now) >= 0) {
        if (block->msg_type() == ACE_Message_Block::MB_DATA) message_of(block);
        block->release();
    }
}

bool InputQueue::put(Message&& m) {
    auto* message = new Message(std::move(m));
    auto* block = new ACE_Message_Block(reinterpret_cast<const char*>(message), 1);
    if (queue_.enqueue_tail(block) < 0) {
        delete message;
        block->release();
        return false;
    }
    return true;
}

void InputQueue::put_control_first(ACE_Message_Block::ACE_Message_Type type) {
    auto* block = new ACE_Message_Block(static_cast<size_t>(0), type);
    if (queue_.enqueue_head(block) < 0) block->release();
}

void InputQueue::put_terminate(std::uint64_t term) {
    auto* block = new ACE_Message_Block(sizeof term, kTerminate);
    std::memcpy(block->wr_ptr(), &term, sizeof term);
    block->wr_ptr(sizeof term);
    if (queue_.enqueue_tail(block) < 0) {
        block->release();
        throw Error("cannot append the termination message to a deactivated queue");
    }
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

std::uint64_t InputQueue::term_of(const ACE_Message_Block* block) {
    std::uint64_t term = 0;
    std::memcpy(&term, block->rd_ptr(), sizeof term);
    return term;
}

}  // namespace nonstop::detail
