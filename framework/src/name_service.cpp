#include "name_service.hpp"

#include <algorithm>
#include <mutex>

#include "module_proxy.hpp"

namespace nonstop::detail {

bool NameService::insert(std::shared_ptr<ModuleProxy> proxy) {
    std::unique_lock lock(mutex_);
    const std::string name = proxy->name();
    return proxies_.emplace(name, std::move(proxy)).second;
}

std::shared_ptr<ModuleProxy> NameService::find(std::string_view name) const {
    std::shared_lock lock(mutex_);
    auto it = proxies_.find(name);
    return it == proxies_.end() ? nullptr : it->second;
}

bool NameService::remove(std::string_view name) {
    std::unique_lock lock(mutex_);
    auto it = proxies_.find(name);
    if (it == proxies_.end()) return false;
    proxies_.erase(it);
    return true;
}

std::vector<std::string> NameService::names() const {
    std::shared_lock lock(mutex_);
    std::vector<std::string> out;
    out.reserve(proxies_.size());
    for (const auto& [name, proxy] : proxies_) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<std::shared_ptr<ModuleProxy>> NameService::proxies() const {
    std::shared_lock lock(mutex_);
    std::vector<std::shared_ptr<ModuleProxy>> out;
    out.reserve(proxies_.size());
    for (const auto& [name, proxy] : proxies_) out.push_back(proxy);
    return out;
}

std::size_t NameService::size() const {
    std::shared_lock lock(mutex_);
    return proxies_.size();
}

}  // namespace nonstop::detail
