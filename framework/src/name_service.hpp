// The name service (thesis 3.3.8, table 4.4): module name → module-proxy.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nonstop::detail {

class ModuleProxy;

class NameService {
public:
    /// Registers `proxy` under its name (insertModuleType); false if the name is taken.
    bool insert(std::shared_ptr<ModuleProxy> proxy);
    /// Resolves a name to its proxy (findModuleType); null if unknown.
    std::shared_ptr<ModuleProxy> find(std::string_view name) const;
    /// Unregisters a name (removeModuleType); false if unknown.
    bool remove(std::string_view name);
    /// Every registered name, sorted.
    std::vector<std::string> names() const;
    /// Every registered proxy, in no order (cheaper than names() for a scan of all modules).
    std::vector<std::shared_ptr<ModuleProxy>> proxies() const;
    /// How many names are registered.
    std::size_t size() const;

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, std::shared_ptr<ModuleProxy>, Hash, std::equal_to<>> proxies_;
};

}  // namespace nonstop::detail
