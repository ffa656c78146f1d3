#include "nonstop/runtime.hpp"

#include <ace/Init_ACE.h>

#include <cstdlib>
#include <sstream>

#include "nonstop/module_proxy.hpp"
#include "timer_service.hpp"

namespace nonstop {

const char* to_string(ModuleStatus s) {
    switch (s) {
        case ModuleStatus::initializing: return "initializing";
        case ModuleStatus::waiting: return "waiting";
        case ModuleStatus::service: return "service";
        case ModuleStatus::passive: return "passive";
        case ModuleStatus::quiescent: return "quiescent";
        case ModuleStatus::stopped: return "stopped";
    }
    return "?";
}

namespace {
Config with_environment(Config config) {
    if (const char* path = std::getenv("NONSTOP_MODULE_PATH"); path && config.module_path.empty()) {
        std::stringstream in(path);
        for (std::string dir; std::getline(in, dir, ':');)
            if (!dir.empty()) config.module_path.push_back(dir);
    }
    return config;
}
}  // namespace

Runtime::Runtime(Config config)
    : config_(std::move(config)),
      events_(names_),
      libraries_(config_.module_path),
      timers_(std::make_unique<detail::TimerService>([this](const std::string& name) {
          if (auto proxy = names_.find(name)) proxy->put(Message{kTimerTick, 1, "timer", {}});
      })),
      upgrader_(*this) {
    ACE::init();
    events_.publish("upgrader", "transaction");
    events_.publish("upgrader", "lifecycle");
}

Runtime::~Runtime() {
    upgrader_.unload_all();
    timers_.reset();
    ACE::fini();
}

Runtime& Runtime::instance() {
    static Runtime runtime(with_environment(Config{}));
    return runtime;
}

std::uint64_t Runtime::observe(std::function<void(const LifecycleEvent&)> observer) {
    std::unique_lock lock(observers_mutex_);
    observers_.emplace(next_observer_, std::move(observer));
    return next_observer_++;
}

void Runtime::unobserve(std::uint64_t token) {
    std::unique_lock lock(observers_mutex_);  // waits for observers running now
    observers_.erase(token);
}

void Runtime::trace(const std::string& module, const std::string& version, const std::string& step) {
    LifecycleEvent event{current_transaction_.load(), module, version, step,
                         std::chrono::system_clock::now()};
    {
        std::shared_lock lock(observers_mutex_);
        for (auto& [token, observer] : observers_) observer(event);
    }
    Message m;
    m.payload = std::to_string(event.transaction) + " " + module + " " + version + " " + step;
    events_.notify("upgrader", "lifecycle", m);
}

bool Runtime::send(std::string_view to, Message m) {
    auto proxy = names_.find(to);
    if (!proxy) return false;
    if (m.sender.empty()) m.sender = "host";
    return proxy->put(std::move(m));
}

std::vector<ModuleInfo> Runtime::modules() const {
    std::vector<ModuleInfo> out;
    for (const auto& name : names_.names())
        if (auto proxy = names_.find(name)) out.push_back(proxy->info());
    return out;
}

std::optional<ModuleInfo> Runtime::info(std::string_view name) const {
    auto proxy = names_.find(name);
    if (!proxy) return std::nullopt;
    return proxy->info();
}

}  // namespace nonstop
