// The test module. Built as several versions (COUNTER_VERSION) of one kind "counter":
//   1: state schema 1; refuses any other schema.
//   2, 3: state schema 2; understand schemas 1 and 2.
// Every message it handles is recorded in the probe; it counts them and the count is its state.
// Variants (COUNTER_LABEL names their version): COUNTER_THROWS records every message, then
// throws; COUNTER_AUDIT_FAILS fails every audit; COUNTER_DOWN offers a down-conversion of its
// state to schema 1 for a rollback.
// What each message type does first is described in test_messages.hpp.
// Options, read from the probe in initialize(): NAME.subscribe = "publisher event",
// NAME.timer = period in ms, NAME.publish = event. It reports the thread it runs on (NAME.tid).
#include <nonstop/module.hpp>
#include <nonstop/runtime.hpp>

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <sstream>
#include <stdexcept>

#include "probe.hpp"
#include "test_messages.hpp"

#ifndef COUNTER_VERSION
#error COUNTER_VERSION must be defined
#endif
#define COUNTER_STR2(x) #x
#define COUNTER_STR(x) COUNTER_STR2(x)
#ifndef COUNTER_LABEL
#define COUNTER_LABEL COUNTER_STR(COUNTER_VERSION)
#endif

namespace {

namespace messages = nonstop::test::messages;

// An inline-function static and a template static: without -fno-gnu-unique these become
// STB_GNU_UNIQUE symbols and pin the library in memory after dlclose().
// Atomic because instances of one library in several modules run on several threads.
inline std::atomic<long>& calls() {
    static std::atomic<long> n{0};
    return n;
}
template <class T>
struct Tally {
    static inline T total{};
};

class Counter : public nonstop::Module {
public:
    void initialize() override {
        const auto& me = context().name();
        probe::set(me + ".tid", std::to_string(::gettid()));  // the thread it runs on
        if (auto sub = probe::get(me + ".subscribe"); !sub.empty()) {
            std::istringstream in(sub);
            std::string publisher, event;
            in >> publisher >> event;
            context().subscribe(publisher, event);
        }
        if (auto event = probe::get(me + ".publish"); !event.empty()) context().publish(event);
        if (auto period = probe::get(me + ".timer"); !period.empty())
            context().schedule_timer(std::chrono::milliseconds(std::stol(period)));
        if (probe::get(me + ".fail_initialize") == "1")
            throw std::runtime_error("initialize was told to fail");
    }

    void handle(const nonstop::Message& m) override {
        ++calls();
        Tally<std::atomic<long>>::total += 1;
        const auto& me = context().name();
        if (m.type == messages::kBlockOnGate) probe::wait_gate(m.payload);
        if (m.type == messages::kForward) {
            const bool sent =
                context().send(m.payload, nonstop::Message{messages::kRecord, 1, {}, "forwarded"});
            probe::set(me + ".sent", sent ? "1" : "0");
        }
        if (m.type == messages::kUpgradeSelf) {
            auto& upgrader = nonstop::Runtime::instance();
            const auto report = m.payload == "unload" ? upgrader.unload(me)
                                                      : upgrader.replace(me, m.payload.substr(8));
            probe::set(me + ".self", report.reason);
        }
        if (m.type == messages::kStackSize) probe::set(me + ".stack", std::to_string(stack_size()));
        if (m.type == messages::kNotifyTicks) {
            const int n = std::stoi(m.payload);
            for (int i = 0; i < n; ++i)
                context().notify(
                    "tick", nonstop::Message{messages::kTick, 1, {}, std::to_string(++ticks_)});
        }
        ++count_;
        probe::set(me + ".count", std::to_string(count_));
        probe::record({me, context().version(), m.sender, m.type, m.payload});
#ifdef COUNTER_THROWS
        throw std::runtime_error("version " COUNTER_LABEL " fails every message");
#endif
    }

#ifdef COUNTER_AUDIT_FAILS
    nonstop::AuditResult audit() override {
        return {false, "count " + std::to_string(count_) + " does not match its checksum"};
    }
#endif

#ifdef COUNTER_DOWN
    std::optional<nonstop::State> put_state_for(std::uint32_t schema) override {
        if (schema != 1) return std::nullopt;
        return nonstop::State{1, std::to_string(count_)};
    }
#endif

    nonstop::State put_state() override {
        return {kSchema,
                std::to_string(count_) + (kSchema == 2 ? ";" + std::to_string(ticks_) : "")};
    }

    void get_state(const nonstop::State& s) override {
        if (s.schema == 0) return;  // no state (a forced replacement): start from zero
        if (s.schema != 1 && (kSchema == 1 || s.schema != 2))
            throw std::runtime_error(
                "version " COUNTER_STR(COUNTER_VERSION) " cannot read state schema " +
                std::to_string(s.schema));
        count_ = std::stol(s.bytes);
        if (auto semi = s.bytes.find(';'); semi != std::string::npos)
            ticks_ = std::stol(s.bytes.substr(semi + 1));
    }

    void terminate() override {
        probe::set(context().name() + ".terminated", COUNTER_STR(COUNTER_VERSION));
    }

private:
    static std::size_t stack_size() {
        pthread_attr_t attr;
        std::size_t size = 0;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            pthread_attr_getstacksize(&attr, &size);
            pthread_attr_destroy(&attr);
        }
        return size;
    }
    static constexpr std::uint32_t kSchema = COUNTER_VERSION == 1 ? 1 : 2;
    long count_ = 0;
    long ticks_ = 0;
};

}  // namespace

NONSTOP_MODULE(Counter, "counter", COUNTER_LABEL)
