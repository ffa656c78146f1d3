#include "nonstop/runtime.hpp"

#include <ace/Init_ACE.h>
#include <ace/Thread_Manager.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <thread>

#include "crash_recorder.hpp"
#include "event_manager.hpp"
#include "graveyard.hpp"
#include "health.hpp"
#include "module_host.hpp"
#include "module_proxy.hpp"
#include "name_service.hpp"
#include "release_store.hpp"
#include "send_error.hpp"
#include "thread_pool.hpp"
#include "timer_service.hpp"
#include "upgrader.hpp"
#include "version_repository.hpp"

namespace nonstop {

using namespace detail;

// The runtime's services and the ModuleHost they offer to module threads, contexts and proxies.
// Members are declared in construction order: the upgrader uses all the others.
namespace {
// The store of a runtime with a state directory, and its crash black box.
std::unique_ptr<ReleaseStore> open_store(const Config& config) {
    if (config.state_dir.empty()) return nullptr;
    auto store = std::make_unique<ReleaseStore>(config.state_dir);
    CrashRecorder::install(config.state_dir);
    return store;
}
}  // namespace

struct Runtime::Services final : ModuleHost {
    explicit Services(Config c)
        : config(std::move(c)),
          store(open_store(config)),
          pool(config.module_thread_keep.count() > 0
                   ? std::make_unique<ThreadPool>(config.module_stack_size,
                                                  config.module_thread_keep, kMaxParkedThreads)
                   : nullptr),
          events(names),
          libraries(config),
          timers([this](const std::string& name) { tick(name); }),
          upgrader(UpgraderParts{names, events, libraries, timers, *this, graveyard, config,
                                 store.get()}),
          health(names, events, upgrader, config),
          watchdog([this] { watch(); }) {}

    ~Services() { stop_watching(); }

    // A tick never waits: one that finds the module's queue full, or the module stuck, is
    // dropped and counted (ticks coalesce), so one module cannot stall every module's timers.
    void tick(const std::string& name) {
        auto proxy = names.find(name);
        if (!proxy) return;
        if (!proxy->try_put(Message{kTimerTick, 1, "timer", {}})) proxy->note_tick_coalesced();
    }
    void watch();
    std::set<std::string> scan_stuck(const std::set<std::string>& before);
    void stop_watching() {
        {
            std::lock_guard lock(watch_mutex);
            watch_stop = true;
        }
        watch_cv.notify_all();
        if (watchdog.joinable()) watchdog.join();
    }

    bool send(std::string_view to, Message&& m) override {
        auto proxy = names.find(to);
        if (!proxy) {
            set_send_error(SendError::unknown_name);
            return false;
        }
        return proxy->put(std::move(m));
    }
    void publish(const std::string& module, const std::string& event) override {
        events.publish(module, event);
    }
    void subscribe(const std::string& module, const std::string& publisher,
                   const std::string& event) override {
        events.subscribe(module, publisher, event);
    }
    void unsubscribe(const std::string& module, const std::string& publisher,
                     const std::string& event) override {
        events.unsubscribe(module, publisher, event);
    }
    std::size_t notify(const std::string& publisher, std::string_view event,
                       const Message& m) override {
        return events.notify(publisher, event, m);
    }
    void set_timer(const std::string& module, std::chrono::milliseconds period) override {
        timers.set(module, period);
    }
    bool tracing() const override {
        return observer_count.load(std::memory_order_acquire) > 0 ||
               events.has_subscribers("upgrader", "lifecycle");
    }
    void trace(std::uint64_t transaction, const std::string& module, const std::string& version,
               Step step) override;
    void transition(const ReleaseTransition& t) override;
    std::size_t thread_stack_size() const override { return config.module_stack_size; }
    ThreadPool* thread_pool() override { return pool.get(); }
    ModuleInfo described(ModuleInfo info) const {
        health.describe(info);
        return info;
    }

    // Module threads parked at once, at most (Config::module_thread_keep): a burst of
    // removals keeps this many for the loads that follow; each costs its stack's address space
    // and about 8 KiB resident.
    static constexpr std::size_t kMaxParkedThreads = 256;

    Config config;
    std::unique_ptr<ReleaseStore> store;
    std::unique_ptr<ThreadPool> pool;  // null unless module threads are kept
    std::shared_mutex observers_mutex;
    std::map<std::uint64_t, std::function<void(const LifecycleEvent&)>> observers;
    std::map<std::uint64_t, std::function<void(const ReleaseTransition&)>> release_observers;
    std::atomic<std::size_t> observer_count{0};
    std::uint64_t next_observer = 1;
    NameService names;
    EventManager events;
    VersionRepository libraries;
    TimerService timers;
    Graveyard graveyard;
    Upgrader upgrader;
    Health health;
    std::mutex watch_mutex;
    std::condition_variable watch_cv;
    bool watch_stop = false;
    std::thread watchdog;
};

// The watchdog: publishes ("upgrader", "stuck") once for each module that has been inside one
// handle() call (or hook) longer than Config::stuck_after, and reaps abandoned instances whose
// thread has ended. It advances the coarse clock of busy_for() every tick (at most 100 ms) and
// scans the modules every quarter of stuck_after: a stuck module is named at most a quarter
// late, and 10,000 idle modules cost a scan every 500 ms by default, not every 100 ms.
void Runtime::Services::watch() {
    const auto tick = std::clamp(config.stuck_after / 4, std::chrono::milliseconds(10),
                                 std::chrono::milliseconds(100));
    const long scan_every = std::max<long>(1, (config.stuck_after / 4) / tick);
    std::set<std::string> stuck;
    std::unique_lock lock(watch_mutex);
    ModuleTask::advance_clock();
    for (long ticks = 1; !watch_cv.wait_for(lock, tick, [&] { return watch_stop; }); ++ticks) {
        lock.unlock();
        ModuleTask::advance_clock();
        if (ticks % scan_every == 0) stuck = scan_stuck(stuck);
        graveyard.reap();
        lock.lock();
    }
}

// Every module: a lock and two loads each, no snapshot built unless it is stuck (a sorted copy
// of 10,000 names and 10,000 snapshots every 100 ms took 12% of a core, measured). Returns the
// modules stuck now; those not in `before` are published.
std::set<std::string> Runtime::Services::scan_stuck(const std::set<std::string>& before) {
    std::set<std::string> now;
    for (const auto& proxy : names.proxies()) {
        if (proxy->busy_for() < config.stuck_after) continue;
        const ModuleInfo info = proxy->info();
        if (!info.stuck) continue;
        now.insert(info.name);
        if (before.count(info.name) != 0 || !events.has_subscribers("upgrader", "stuck")) continue;
        Message m;
        m.payload = info.name + " " + info.version + " " + info.stuck_in + " " +
                    std::to_string(info.stuck_for.count() / 1'000'000) + " ms";
        events.notify("upgrader", "stuck", m);
    }
    return now;
}

void Runtime::Services::trace(std::uint64_t transaction, const std::string& module,
                              const std::string& version, Step step) {
    LifecycleEvent event{transaction, module, version, step, std::chrono::system_clock::now()};
    {
        std::shared_lock lock(observers_mutex);
        for (auto& [token, observer] : observers) observer(event);
    }
    if (!events.has_subscribers("upgrader", "lifecycle")) return;
    Message m;
    m.payload = std::to_string(transaction) + " " + module + " " + version + " " + to_string(step);
    events.notify("upgrader", "lifecycle", m);
}

void Runtime::Services::transition(const ReleaseTransition& t) {
    {
        std::shared_lock lock(observers_mutex);
        for (auto& [token, observer] : release_observers) observer(t);
    }
    if (!events.has_subscribers("upgrader", "release")) return;
    Message m;
    m.payload = std::to_string(t.transaction) + " " + to_string(t.state) + " " + t.rule +
                (t.evidence.empty() ? std::string() : ": " + t.evidence);
    events.notify("upgrader", "release", m);
}

namespace {
Config with_environment(Config config) {
    if (const char* path = std::getenv("NONSTOP_MODULE_PATH"); path && config.module_path.empty()) {
        std::stringstream in(path);
        for (std::string dir; std::getline(in, dir, ':');)
            if (!dir.empty()) config.module_path.push_back(dir);
    }
    if (const char* dir = std::getenv("NONSTOP_STATE_DIR"); dir && *dir && config.state_dir.empty())
        config.state_dir = dir;
    return config;
}
}  // namespace

Runtime::Runtime(Config config) : services_(std::make_unique<Services>(std::move(config))) {
    ACE::init();
    // A thread abandoned inside module code must not hold up the end of the process.
    ACE_Thread_Manager::instance()->wait_on_exit(0);
    services_->events.publish("upgrader", "transaction");
    services_->events.publish("upgrader", "lifecycle");
    services_->events.publish("upgrader", "stuck");
    for (const char* event : {"release", "audit", "alarm"})
        services_->events.publish("upgrader", event);
}

Runtime::~Runtime() {
    services_->health.stop();  // no rollback or audit step starts during the shutdown
    services_->upgrader.unload_all();
    services_->stop_watching();
    services_->timers.stop();
    services_->graveyard.reap();
    if (!services_->graveyard.list().empty()) {
        // Threads still inside abandoned module code may call back into the services: they
        // are left, with everything they use, to the end of the process.
        keep_to_exit(std::shared_ptr<Services>(services_.release(), [](Services*) {}));
        return;
    }
    services_.reset();
    ACE::fini();
}

Runtime& Runtime::instance() {
    static Runtime runtime(with_environment(Config{}));
    return runtime;
}

const Config& Runtime::config() const { return services_->config; }

TransactionReport Runtime::load(const std::string& name, const std::string& library) {
    return services_->upgrader.load(name, library);
}
TransactionReport Runtime::unload(const std::string& name, bool force) {
    return services_->upgrader.unload(name, force);
}
TransactionReport Runtime::replace(const std::string& name, const std::string& library,
                                   bool force) {
    TransactionOptions options;
    options.force = force;
    return services_->upgrader.replace(name, library, options);
}
TransactionReport Runtime::enable(const std::string& name) {
    return services_->upgrader.enable(name);
}
TransactionReport Runtime::disable(const std::string& name) {
    return services_->upgrader.disable(name);
}
TransactionReport Runtime::syn_replace(const std::vector<Change>& changes, Mode mode) {
    return services_->upgrader.syn_replace(changes, mode);
}
TransactionReport Runtime::syn_replace(const std::vector<Change>& changes, Mode mode,
                                       Agreement agree) {
    return services_->upgrader.syn_replace(changes, mode, TransactionOptions{}, std::move(agree));
}
TransactionReport Runtime::syn_load(const std::vector<Change>& changes, Mode mode) {
    return services_->upgrader.syn_load(changes, mode);
}
TransactionReport Runtime::syn_upgrade(const std::vector<Change>& changes, Mode mode) {
    return services_->upgrader.syn_upgrade(changes, mode);
}
TransactionReport Runtime::syn_upgrade(const std::vector<Change>& replacements,
                                       const std::vector<Change>& additions, Mode mode) {
    return services_->upgrader.syn_upgrade(replacements, additions, mode);
}
TransactionReport Runtime::load(const std::string& name, const std::string& library,
                                const TransactionOptions& options) {
    return services_->upgrader.load(name, library, options);
}
TransactionReport Runtime::replace(const std::string& name, const std::string& library,
                                   const TransactionOptions& options) {
    return services_->upgrader.replace(name, library, options);
}
TransactionReport Runtime::syn_replace(const std::vector<Change>& changes, Mode mode,
                                       const TransactionOptions& options) {
    return services_->upgrader.syn_replace(changes, mode, options);
}
TransactionReport Runtime::syn_load(const std::vector<Change>& changes, Mode mode,
                                    const TransactionOptions& options) {
    return services_->upgrader.syn_load(changes, mode, options);
}
TransactionReport Runtime::syn_upgrade(const std::vector<Change>& changes, Mode mode,
                                       const TransactionOptions& options) {
    return services_->upgrader.syn_upgrade(changes, mode, options);
}
TransactionReport Runtime::syn_upgrade(const std::vector<Change>& replacements,
                                       const std::vector<Change>& additions, Mode mode,
                                       const TransactionOptions& options) {
    return services_->upgrader.syn_upgrade(replacements, additions, mode, options);
}
TransactionReport Runtime::set_timer(std::chrono::milliseconds limit) {
    return services_->upgrader.set_timer(limit);
}
void Runtime::unload_all() { services_->upgrader.unload_all(); }

void Runtime::set_probation(std::chrono::milliseconds period) {
    services_->upgrader.set_probation(period);
}
std::chrono::milliseconds Runtime::probation() const { return services_->upgrader.probation(); }
std::vector<std::uint64_t> Runtime::accept(std::uint64_t transaction) {
    return services_->upgrader.accept(transaction);
}
TransactionReport Runtime::rollback(const std::string& name, bool from_checkpoint) {
    RollbackRequest request;
    request.name = name;
    request.from_checkpoint = from_checkpoint;
    return services_->upgrader.rollback(request);
}
TransactionReport Runtime::rollback_transaction(std::uint64_t transaction, bool from_checkpoint) {
    RollbackRequest request;
    request.transaction = transaction;
    request.from_checkpoint = from_checkpoint;
    return services_->upgrader.rollback(request);
}
std::chrono::milliseconds Runtime::timer() const { return services_->upgrader.timer(); }
std::size_t Runtime::queued() const { return services_->upgrader.queued(); }
std::vector<TransactionReport> Runtime::history(std::size_t count) const {
    return services_->upgrader.history(count);
}

RestoreReport Runtime::restore() {
    return services_->upgrader.restore(services_->config.state_dir);
}

std::vector<SavedCheckpoint> Runtime::checkpoint(const std::string& name) {
    return services_->upgrader.checkpoint(name);
}

std::vector<CrashRecord> Runtime::crashes() const {
    return services_->store ? services_->store->crashes() : std::vector<CrashRecord>{};
}

VersionCatalogue Runtime::versions(const std::string& name) const {
    VersionCatalogue out;
    if (!name.empty()) {
        if (auto proxy = services_->names.find(name)) out.kind = proxy->info().kind;
        if (out.kind.empty() && services_->store) out.kind = services_->store->kind_of(name);
        if (out.kind.empty())
            throw Error("module '" + name + "' is unknown here and in the release store");
        if (services_->store) out.history = services_->store->history_of(name);
    }
    out.libraries = services_->libraries.catalogue(out.kind);
    return out;
}

bool Runtime::send(std::string_view to, Message m) {
    if (m.sender.empty()) m.sender = "host";
    return services_->send(to, std::move(m));
}

std::optional<Port> Runtime::port(std::string_view name) const {
    auto proxy = services_->names.find(name);
    if (!proxy) return std::nullopt;
    return Port(std::move(proxy));
}

Port::Port(std::shared_ptr<ModuleProxy> proxy) : proxy_(std::move(proxy)) {}

const std::string& Port::name() const { return proxy_->name(); }

bool Port::send(Message m) const {
    if (m.sender.empty()) m.sender = "host";
    return proxy_->put(std::move(m));
}

std::vector<ModuleInfo> Runtime::modules() const {
    std::vector<ModuleInfo> out;
    for (const auto& name : services_->names.names())
        if (auto proxy = services_->names.find(name))
            out.push_back(services_->described(proxy->info()));
    return out;
}

std::optional<ModuleInfo> Runtime::info(std::string_view name) const {
    auto proxy = services_->names.find(name);
    if (!proxy) return std::nullopt;
    return services_->described(proxy->info());
}

std::vector<AbandonedInstance> Runtime::abandoned() const { return services_->graveyard.list(); }

std::vector<LibraryInfo> Runtime::libraries() const { return services_->libraries.list(); }

std::vector<EventTag> Runtime::events() const { return services_->events.table(); }

std::vector<std::string> Runtime::module_path() const { return services_->libraries.module_path(); }

void Runtime::set_module_path(std::vector<std::string> dirs) {
    services_->libraries.set_module_path(std::move(dirs));
}

std::uint64_t Runtime::observe(std::function<void(const LifecycleEvent&)> observer) {
    std::unique_lock lock(services_->observers_mutex);
    services_->observers.emplace(services_->next_observer, std::move(observer));
    services_->observer_count.store(services_->observers.size(), std::memory_order_release);
    return services_->next_observer++;
}

std::uint64_t Runtime::observe_releases(std::function<void(const ReleaseTransition&)> observer) {
    std::unique_lock lock(services_->observers_mutex);
    services_->release_observers.emplace(services_->next_observer, std::move(observer));
    return services_->next_observer++;
}

void Runtime::unobserve(std::uint64_t token) {
    std::unique_lock lock(services_->observers_mutex);  // waits for observers running now
    services_->observers.erase(token);
    services_->release_observers.erase(token);
    services_->observer_count.store(services_->observers.size(), std::memory_order_release);
}

}  // namespace nonstop
