#include "probe.hpp"

#include <condition_variable>
#include <map>
#include <mutex>

namespace probe {
namespace {
std::mutex mutex;
std::condition_variable changed;
std::vector<Event> recorded;
std::map<std::string, bool> gates;  // true: open
std::map<std::string, int> blocked;
std::map<std::string, std::string> values;
}  // namespace

void record(Event e) {
    std::lock_guard lock(mutex);
    recorded.push_back(std::move(e));
    changed.notify_all();
}

std::vector<Event> events() {
    std::lock_guard lock(mutex);
    return recorded;
}

std::size_t count() {
    std::lock_guard lock(mutex);
    return recorded.size();
}

bool wait_count(std::size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] { return recorded.size() >= n; });
}

void clear() {
    std::lock_guard lock(mutex);
    recorded.clear();
    values.clear();
}

void close_gate(const std::string& name) {
    std::lock_guard lock(mutex);
    gates[name] = false;
}

void open_gate(const std::string& name) {
    std::lock_guard lock(mutex);
    gates[name] = true;
    changed.notify_all();
}

void wait_gate(const std::string& name) {
    std::unique_lock lock(mutex);
    ++blocked[name];
    changed.notify_all();
    changed.wait(lock, [&] { return gates.count(name) == 0 || gates[name]; });
    --blocked[name];
}

bool wait_until_blocked(const std::string& name, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] { return blocked[name] > 0; });
}

void set(const std::string& key, const std::string& value) {
    std::lock_guard lock(mutex);
    values[key] = value;
    changed.notify_all();
}

std::string get(const std::string& key) {
    std::lock_guard lock(mutex);
    auto it = values.find(key);
    return it == values.end() ? std::string() : it->second;
}

}  // namespace probe
