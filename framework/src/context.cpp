// Context: what a module implementation may ask of the framework. Everything goes through the
// module's task to the narrow ModuleHost interface; side effects asked for before the module
// starts wait until it does, so an aborted replacement leaves none behind.
#include "module_task.hpp"

namespace nonstop {

using detail::ModuleHost;

const std::string& Context::name() const { return task_.name(); }

const std::string& Context::version() const { return task_.version(); }

bool Context::send(std::string_view to, Message m) {
    if (task_.passive()) return false;
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
