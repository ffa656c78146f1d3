// The module contract: the one interface that module libraries built outside this repository
// compile against. Its names are fixed; additions are allowed (source-compatible). How the
// framework drives a module through these calls: docs/architecture.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nonstop/export.hpp"

namespace nonstop {

namespace detail {
class ModuleTask;
}

/// One request between modules. The framework carries it inside an ACE_Message_Block.
struct Message {
    std::uint32_t type = 0;      // application-defined
    std::uint16_t protocol = 1;  // message-protocol version (thesis 3.5, transaction 6)
    std::string sender;          // set by the framework: the sending module's name
    std::string payload;         // bytes
};

/// A checkpoint handed from the old version to the new one.
struct State {
    std::uint32_t schema = 0;  // the old implementation's state format version
    std::string bytes;
};

/// What a module's audit found (seed 002): healthy unless the module says otherwise.
struct AuditResult {
    bool healthy = true;
    std::string detail;  // one sentence: what is wrong, or what was checked
};

/// The framework, as seen from inside one module implementation.
class NONSTOP_API Context {
public:
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    /// This module's name.
    const std::string& name() const;
    /// Sends `m` to the module named `to` through its proxy. False: unknown name, or this
    /// implementation is passive (disabled, being replaced, or not yet started).
    bool send(std::string_view to, Message m);
    /// Becomes publisher of the event tag (name(), event).
    void publish(std::string_view event);
    /// Subscribes this module to the tag (publisher, event); idempotent.
    void subscribe(std::string_view publisher, std::string_view event);
    /// Removes this module's subscription to (publisher, event), if any.
    void unsubscribe(std::string_view publisher, std::string_view event);
    /// Multicasts `m` to every subscriber of (name(), event); returns how many received it.
    std::size_t notify(std::string_view event, Message m);
    /// Delivers a kTimerTick message to this module every `period` through its proxy;
    /// zero cancels. The timer belongs to the module name and survives replacement.
    void schedule_timer(std::chrono::milliseconds period);
    /// The version string of this implementation's library.
    const std::string& version() const;

private:
    friend class detail::ModuleTask;
    explicit Context(detail::ModuleTask& task) : task_(task) {}
    detail::ModuleTask& task_;
};

inline constexpr std::uint32_t kTimerTick = 0xFFFF0001;

/// Why the calling thread's latest send that returned false (Context::send, Runtime::send,
/// Port::send) did: one sentence, e.g. "the receiving module's queue cannot hold a message of
/// that size". A send never throws.
NONSTOP_API const char* last_send_error();

/// Base class of every module implementation (the thesis's ModuleImp). The framework owns the
/// thread and the service loop; a subclass only reacts to the calls below.
class Module {
public:
    virtual ~Module() = default;
    /// In the module's own thread, before service. Throwing fails the load or replacement.
    virtual void initialize() {}
    /// One request, in the module's own thread.
    virtual void handle(const Message& m) = 0;
    /// Active: may initiate requests. Called in the module's own thread.
    virtual void enable() {}
    /// Passive: must initiate none. Called in the module's own thread.
    virtual void disable() {}
    /// Checkpoint, taken while the module is quiescent; throwing votes NO.
    virtual State put_state() { return {}; }
    /// Recover from the previous version's checkpoint before service; throwing aborts.
    virtual void get_state(const State& /*s*/) {}
    /// As get_state(), when the framework hands over its only copy: the module may take the
    /// bytes by move, so the hand-over costs the same for 1 KiB and 1 GiB. The default calls
    /// get_state(); throwing aborts. Also how a version whose transaction aborted after its
    /// put_state() gets its own checkpoint back before it serves again (unless a new version
    /// took it), so put_state() may move the state out too.
    virtual void take_state(State&& s) { get_state(s); }
    /// Service has ended: called in the module's own thread after its last message.
    virtual void terminate() {}
    /// Checks the module's own consistency, every Config::audit_period, in its own thread
    /// between two messages, within Config::audit_timeout. Not healthy, a throw or a time-out
    /// climbs the escalation ladder (docs/architecture.md, "Probation, audits, rollback").
    virtual AuditResult audit() { return {}; }
    /// Down-conversion for a rollback (OTP's code_change({down, Vsn})): a checkpoint in the
    /// older version's state format `schema`, taken while quiescent, as put_state() is. Empty
    /// (the default): not offered; put_state() is handed over and the older version may refuse
    /// it.
    virtual std::optional<State> put_state_for(std::uint32_t /*schema*/) { return std::nullopt; }

protected:
    /// The framework as seen from this module; valid from initialize() on.
    Context& context() { return *context_; }

private:
    friend class detail::ModuleTask;
    Context* context_ = nullptr;
};

/// What a module library exports: built by NONSTOP_MODULE, read by the VersionRepository.
struct ModuleDescriptor {
    const char* kind;
    const char* version;
    Module* (*create)();
    void (*destroy)(Module*);
};

/// The framework ABI a module library was compiled against. The runtime refuses a library whose
/// value differs from its own: the version number changes whenever the contract's layout does,
/// and the sizes catch a library compiled with another standard library or string ABI.
constexpr std::uint32_t abi_version() {
    constexpr std::uint32_t contract = 3;  // 2: audit(), put_state_for(); 3: take_state()
    return (contract << 24) ^ (static_cast<std::uint32_t>(sizeof(Message)) << 12) ^
           (static_cast<std::uint32_t>(sizeof(State)) << 4) ^
           static_cast<std::uint32_t>(sizeof(std::string));
}

/// The bytes NONSTOP_MODULE places in the section ".nonstop_module" of a module library:
/// "nonstop-module\0KIND\0VERSION\0". The framework reads them from the file to learn a
/// library's kind and version without loading it (running none of its code).
template <std::size_t N>
struct ModuleMarker {
    char bytes[N];
};

inline constexpr char kModuleMarkerPrefix[] = "nonstop-module";

constexpr std::size_t module_marker_size(const char* kind, const char* version) {
    return sizeof kModuleMarkerPrefix + std::char_traits<char>::length(kind) + 1 +
           std::char_traits<char>::length(version) + 1;
}

template <std::size_t N>
constexpr ModuleMarker<N> make_module_marker(const char* kind, const char* version) {
    ModuleMarker<N> m{};
    std::size_t at = 0;
    for (const char* part : {static_cast<const char*>(kModuleMarkerPrefix), kind, version}) {
        for (const char* c = part; *c != '\0'; ++c) m.bytes[at++] = *c;
        m.bytes[at++] = '\0';
    }
    return m;
}

}  // namespace nonstop

#define NONSTOP_EXPORT __attribute__((visibility("default")))

/// In exactly one source file of a module library: exports the factory (thesis 4.6.1) and the
/// framework ABI version the library was built against, and marks the file with its kind and
/// version (ModuleMarker) for catalogues that must not load it.
#define NONSTOP_MODULE(CLASS, KIND, VERSION)                                                   \
    extern "C" NONSTOP_EXPORT std::uint32_t nonstop_module_abi() {                             \
        return ::nonstop::abi_version();                                                       \
    }                                                                                          \
    extern "C" NONSTOP_EXPORT const ::nonstop::ModuleDescriptor* nonstop_module_descriptor() { \
        static constexpr ::nonstop::ModuleDescriptor descriptor{                               \
            KIND, VERSION, []() -> ::nonstop::Module* { return new CLASS(); },                 \
            [](::nonstop::Module* m) { delete m; }};                                           \
        return &descriptor;                                                                    \
    }                                                                                          \
    namespace {                                                                                \
    [[gnu::used, gnu::section(".nonstop_module")]] constexpr auto nonstop_module_marker =      \
        ::nonstop::make_module_marker<::nonstop::module_marker_size(KIND, VERSION)>(KIND,      \
                                                                                    VERSION);  \
    }
