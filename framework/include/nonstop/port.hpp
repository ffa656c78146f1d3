// A host's handle on one module's input: resolved once, then every send goes straight to the
// module's proxy without a name lookup (the hot path of a host that feeds a module).
#pragma once

#include <memory>
#include <string>

#include "nonstop/export.hpp"
#include "nonstop/module.hpp"

namespace nonstop {

namespace detail {
class ModuleProxy;
}

class NONSTOP_API Port {
public:
    /// The module's name.
    const std::string& name() const;
    /// Sends `m` to the module; its sender is "host" unless set. False once the module has
    /// been removed (the name may since belong to another module: resolve a new Port).
    bool send(Message m) const;

private:
    friend class Runtime;
    NONSTOP_LOCAL explicit Port(std::shared_ptr<detail::ModuleProxy> proxy);
    std::shared_ptr<detail::ModuleProxy> proxy_;
};

}  // namespace nonstop
