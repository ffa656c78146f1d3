// A recorder shared by the test programs and the test module libraries: modules write what they
// observe, tests read it. It lives in its own shared library so that both sides see one copy.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace probe {

struct Event {
    std::string module;   // the module's name
    std::string version;  // the implementation that saw it
    std::string sender;
    std::uint32_t type = 0;
    std::string payload;
};

void record(Event e);
std::vector<Event> events();
std::size_t count();
/// Waits until at least `n` events are recorded; false after `limit`.
bool wait_count(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(30));
void clear();

/// Named gates that a module handler can block on until the test opens them.
void close_gate(const std::string& name);
void open_gate(const std::string& name);
void wait_gate(const std::string& name);
/// True once some handler is waiting on the gate.
bool wait_until_blocked(const std::string& name,
                        std::chrono::milliseconds limit = std::chrono::seconds(30));

/// Named values that tests use to configure modules and modules use to report back.
void set(const std::string& key, const std::string& value);
std::string get(const std::string& key);

}  // namespace probe
