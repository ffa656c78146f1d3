#include "event_manager.hpp"

#include <algorithm>

#include "module_proxy.hpp"
#include "name_service.hpp"

namespace nonstop::detail {

namespace {
EventTag& tag_for(std::map<std::pair<std::string, std::string>, EventTag, std::less<>>& tags,
                  std::string_view publisher, std::string_view event) {
    auto key = std::make_pair(std::string(publisher), std::string(event));
    auto it = tags.find(key);
    if (it == tags.end()) it = tags.emplace(key, EventTag{key.first, key.second, false, {}}).first;
    return it->second;
}
}  // namespace

void EventManager::publish(std::string_view publisher, std::string_view event) {
    std::lock_guard lock(mutex_);
    tag_for(tags_, publisher, event).published = true;
}

void EventManager::subscribe(std::string_view subscriber, std::string_view publisher,
                             std::string_view event) {
    std::lock_guard lock(mutex_);
    auto& subs = tag_for(tags_, publisher, event).subscribers;
    if (std::find(subs.begin(), subs.end(), subscriber) == subs.end())
        subs.emplace_back(subscriber);
}

bool EventManager::unsubscribe(std::string_view subscriber, std::string_view publisher,
                               std::string_view event) {
    std::lock_guard lock(mutex_);
    auto it = tags_.find(std::make_pair(std::string(publisher), std::string(event)));
    if (it == tags_.end()) return false;
    auto& subs = it->second.subscribers;
    auto at = std::find(subs.begin(), subs.end(), subscriber);
    if (at == subs.end()) return false;
    subs.erase(at);
    if (subs.empty() && !it->second.published) tags_.erase(it);
    return true;
}

void EventManager::remove_module(std::string_view name) {
    std::lock_guard lock(mutex_);
    for (auto it = tags_.begin(); it != tags_.end();) {
        auto& tag = it->second;
        std::erase(tag.subscribers, name);
        if (tag.publisher == name) tag.published = false;
        if (!tag.published && tag.subscribers.empty())
            it = tags_.erase(it);
        else
            ++it;
    }
}

std::size_t EventManager::notify(std::string_view publisher, std::string_view event,
                                 const Message& m) {
    std::vector<std::string> subscribers;
    {
        std::lock_guard lock(mutex_);
        auto it = tags_.find(std::make_pair(std::string(publisher), std::string(event)));
        if (it == tags_.end() || !it->second.published) return 0;
        subscribers = it->second.subscribers;
    }
    std::size_t delivered = 0;
    for (const auto& name : subscribers) {
        auto proxy = names_.find(name);
        if (!proxy) continue;
        Message copy = m;
        copy.sender = std::string(publisher);
        // Never waits for room: a subscriber with a full queue must not stall the publisher
        // (another module, or the upgrader announcing a transaction). It is counted.
        if (proxy->try_put(std::move(copy)))
            ++delivered;
        else
            proxy->note_notification_dropped();
    }
    return delivered;
}

bool EventManager::has_subscribers(std::string_view publisher, std::string_view event) const {
    std::lock_guard lock(mutex_);
    auto it = tags_.find(std::make_pair(std::string(publisher), std::string(event)));
    return it != tags_.end() && it->second.published && !it->second.subscribers.empty();
}

std::vector<EventTag> EventManager::table() const {
    std::lock_guard lock(mutex_);
    std::vector<EventTag> out;
    for (const auto& [key, tag] : tags_) out.push_back(tag);
    return out;
}

}  // namespace nonstop::detail
