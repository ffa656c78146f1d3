// The event manager (thesis 3.3.7, table 4.7): event tags (publisher, event) and their
// subscribers; a notification is multicast through each subscriber's proxy, so a subscriber
// being swapped gets it buffered like any other message.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nonstop/event_tag.hpp"
#include "nonstop/module.hpp"

namespace nonstop::detail {

class NameService;

class EventManager {
public:
    explicit EventManager(NameService& names) : names_(names) {}

    /// `publisher` becomes the publisher of (publisher, event) (publishEvent).
    void publish(std::string_view publisher, std::string_view event);
    /// Adds `subscriber` to (publisher, event) (subscribeEvent); idempotent. A tag not yet
    /// published is created so that start-up order does not matter.
    void subscribe(std::string_view subscriber, std::string_view publisher, std::string_view event);
    /// Removes one subscription (unSubscribeEvent); false if there was none.
    bool unsubscribe(std::string_view subscriber, std::string_view publisher,
                     std::string_view event);
    /// Removes every trace of a removed module: its subscriptions and its publications.
    void remove_module(std::string_view name);
    /// Sends `m` (sender set to the publisher) to every subscriber of (publisher, event) that
    /// accepts it (notifyAll); returns how many did. Zero when the tag is not published.
    std::size_t notify(std::string_view publisher, std::string_view event, const Message& m);
    /// True when (publisher, event) is published and has a subscriber: notify() would deliver.
    bool has_subscribers(std::string_view publisher, std::string_view event) const;
    /// The whole event table.
    std::vector<EventTag> table() const;

private:
    using Key = std::pair<std::string, std::string>;
    NameService& names_;
    mutable std::mutex mutex_;
    std::map<Key, EventTag, std::less<>> tags_;
};

}  // namespace nonstop::detail
