// The narrow interface through which a module's thread, its Context and its proxy reach the rest
// of the process. The runtime implements it; nothing below the upgrader sees the runtime itself,
// so calls only run downward (upgrader → transaction → proxy → module task → queue).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nonstop/lifecycle_event.hpp"
#include "nonstop/module.hpp"
#include "nonstop/release_transition.hpp"

namespace nonstop::detail {

class ThreadPool;

class ModuleHost {
public:
    /// Delivers `m` to the module named `to`; false when the name is unknown or refuses input.
    virtual bool send(std::string_view to, Message&& m) = 0;
    virtual void publish(const std::string& module, const std::string& event) = 0;
    virtual void subscribe(const std::string& module, const std::string& publisher,
                           const std::string& event) = 0;
    virtual void unsubscribe(const std::string& module, const std::string& publisher,
                             const std::string& event) = 0;
    /// Multicasts to the subscribers of (publisher, event); how many accepted it.
    virtual std::size_t notify(const std::string& publisher, std::string_view event,
                               const Message& m) = 0;
    /// Ticks the module every `period`; zero cancels.
    virtual void set_timer(const std::string& module, std::chrono::milliseconds period) = 0;
    /// True when some observer or subscriber would see a lifecycle step: callers skip building
    /// the step's strings otherwise.
    virtual bool tracing() const = 0;
    /// Reports one lifecycle step of `module` in transaction `transaction` (0: none).
    virtual void trace(std::uint64_t transaction, const std::string& module,
                       const std::string& version, Step step) = 0;
    /// Reports a change in a release's standing (the upgrader, under its transaction lock).
    /// A host without an upgrader (the preflight child) follows none.
    virtual void transition(const ReleaseTransition& /*t*/) {}
    /// The stack size of a module thread in bytes (Config::module_stack_size); 0: the default.
    virtual std::size_t thread_stack_size() const { return 0; }
    /// Where module threads are kept for reuse (Config::module_thread_keep); null: each
    /// instance starts a thread of its own, which ends with it.
    virtual ThreadPool* thread_pool() { return nullptr; }

protected:
    ~ModuleHost() = default;
};

}  // namespace nonstop::detail
