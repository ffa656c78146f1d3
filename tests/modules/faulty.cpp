// Module libraries of kind "counter" that fail at one step each (FAULT_*), otherwise behaving
// like a small counter; FAULT_OTHER_KIND fails at nothing but declares another kind.
#include <nonstop/module.hpp>

#include <stdexcept>

#include "probe.hpp"

namespace {

class Faulty : public nonstop::Module {
public:
    Faulty() {
#ifdef FAULT_FACTORY_THROWS
        throw std::runtime_error("constructor refuses to build");
#endif
    }
    void initialize() override {
#ifdef FAULT_INIT_THROWS
        throw std::runtime_error("no configuration found");
#endif
    }
    void handle(const nonstop::Message& m) override {
        probe::record({context().name(), context().version(), m.sender, m.type, m.payload});
    }
    nonstop::State put_state() override {
#ifdef FAULT_PUT_STATE
        throw std::runtime_error("state is corrupt");
#endif
        return {1, "0"};
    }
    void get_state(const nonstop::State&) override {
#ifdef FAULT_GET_STATE
        throw std::runtime_error("state cannot be parsed");
#endif
    }
};

}  // namespace

#ifdef FAULT_FACTORY_NULL
extern "C" NONSTOP_EXPORT std::uint32_t nonstop_module_abi() { return nonstop::abi_version(); }
extern "C" NONSTOP_EXPORT const nonstop::ModuleDescriptor* nonstop_module_descriptor() {
    static constexpr nonstop::ModuleDescriptor d{"counter", "null",
                                                 []() -> nonstop::Module* { return nullptr; },
                                                 [](nonstop::Module* m) { delete m; }};
    return &d;
}
#elif defined(FAULT_WRONG_ABI)
extern "C" NONSTOP_EXPORT std::uint32_t nonstop_module_abi() { return 12345; }
extern "C" NONSTOP_EXPORT const nonstop::ModuleDescriptor* nonstop_module_descriptor() {
    return nullptr;
}
#elif defined(FAULT_NO_FACTORY)
extern "C" NONSTOP_EXPORT int not_a_module_factory() { return 42; }
#elif defined(FAULT_OTHER_KIND)
NONSTOP_MODULE(Faulty, "other", FAULT_VERSION)
#else
NONSTOP_MODULE(Faulty, "counter", FAULT_VERSION)
#endif
