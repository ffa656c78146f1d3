// Context: what a module implementation may ask of the framework. Everything goes through the
// module's task to the narrow ModuleHost interface; side effects asked for before the module
// starts wait until it does, so an aborted replacement leaves none behind.
#include "module_task.hpp"
#include "send_error.hpp"

namespace nonstop {

using detail::ModuleHost;

namespace {
thread_local const char* send_error = "";
}

const char* last_send_error() { return send_error; }

void detail::set_send_error(SendError e) {
    switch (e) {
        case SendError::unknown_name: send_error = "no module has that name"; return;
        case SendError::refused:
            send_error = "the module refuses input (it is being removed)";
            return;
        case SendError::passive: send_error = "the sending module is passive"; return;
        case SendError::too_large:
            send_error = "the message is larger than the receiving module's queue can hold";
            return;
        case SendError::full: send_error = "the receiving module's queue is full"; return;
        case SendError::out_of_memory: send_error = "no memory for the message"; return;
    }
}

const std::string& Context::name() const { return task_.name(); }

const std::string& Context::version() const { return task_.version(); }

bool Context::send(std::string_view to, Message m) {
    if (task_.passive()) {
        detail::set_send_error(detail::SendError::passive);
        return false;
    }
    m.sender = task_.name();
    return task_.host().send(to, std::move(m));
}

void Context::publish(std::string_view event) {
    task_.defer_or_run([&host = task_.host(), name = task_.name(), e = std::string(event)] {
        host.publish(name, e);
    });
}

void Context::subscribe(std::string_view publisher, std::string_view event) {
    task_.defer_or_run([&host = task_.host(), name = task_.name(), p = std::string(publisher),
                        e = std::string(event)] { host.subscribe(name, p, e); });
}

void Context::unsubscribe(std::string_view publisher, std::string_view event) {
    task_.defer_or_run([&host = task_.host(), name = task_.name(), p = std::string(publisher),
                        e = std::string(event)] { host.unsubscribe(name, p, e); });
}

std::size_t Context::notify(std::string_view event, Message m) {
    if (task_.passive()) return 0;
    return task_.host().notify(task_.name(), event, m);
}

void Context::schedule_timer(std::chrono::milliseconds period) {
    task_.defer_or_run(
        [&host = task_.host(), name = task_.name(), period] { host.set_timer(name, period); });
}

}  // namespace nonstop
