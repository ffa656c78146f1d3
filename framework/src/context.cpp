// Context: what a module implementation may ask of the framework.
#include "module_task.hpp"
#include "nonstop/module_proxy.hpp"
#include "nonstop/runtime.hpp"
#include "timer_service.hpp"

namespace nonstop {

const std::string& Context::name() const { return task_.name(); }

const std::string& Context::version() const { return task_.library().version(); }

bool Context::send(std::string_view to, Message m) {
    if (task_.passive()) return false;
    auto proxy = task_.runtime().names().find(to);
    if (!proxy) return false;
    m.sender = task_.name();
    return proxy->put(std::move(m));
}

void Context::publish(std::string_view event) {
    task_.defer_or_run([&runtime = task_.runtime(), name = task_.name(), e = std::string(event)] {
        runtime.events().publish(name, e);
    });
}

void Context::subscribe(std::string_view publisher, std::string_view event) {
    task_.defer_or_run([&runtime = task_.runtime(), name = task_.name(),
                        p = std::string(publisher), e = std::string(event)] {
        runtime.events().subscribe(name, p, e);
    });
}

void Context::unsubscribe(std::string_view publisher, std::string_view event) {
    task_.defer_or_run([&runtime = task_.runtime(), name = task_.name(),
                        p = std::string(publisher), e = std::string(event)] {
        runtime.events().unsubscribe(name, p, e);
    });
}

std::size_t Context::notify(std::string_view event, Message m) {
    if (task_.passive()) return 0;
    return task_.runtime().events().notify(task_.name(), event, m);
}

void Context::schedule_timer(std::chrono::milliseconds period) {
    task_.defer_or_run([&runtime = task_.runtime(), name = task_.name(), period] {
        runtime.timers().set(name, period);
    });
}

}  // namespace nonstop
