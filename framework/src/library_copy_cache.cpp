#include "library_copy_cache.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace nonstop::detail {

LibraryCopyCache::Copy::~Copy() {
    if (!path.empty()) ::unlink(path.c_str());
}

LibraryCopyCache::LibraryCopyCache(std::size_t max_entries, std::uint64_t max_bytes,
                                   std::chrono::milliseconds settle)
    : max_entries_(max_entries), max_bytes_(max_bytes), settle_(settle) {}

bool LibraryCopyCache::settled(const FileIdentity& identity,
                               std::chrono::system_clock::time_point read_at) const {
    const auto read_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(read_at.time_since_epoch()).count();
    const auto settle_ns = std::chrono::nanoseconds(settle_).count();
    return std::max(identity.mtime_ns, identity.ctime_ns) < read_ns - settle_ns;
}

// A copy whose file has disappeared (a temporary-file cleaner, say) is forgotten.
bool LibraryCopyCache::present_i(std::list<Entry>::iterator it) {
    struct stat st {};
    if (::stat(it->copy->path.c_str(), &st) == 0 &&
        static_cast<std::uint64_t>(st.st_size) == it->copy->bytes)
        return true;
    bytes_ -= it->copy->bytes;
    entries_.erase(it);
    return false;
}

std::shared_ptr<const LibraryCopyCache::Copy> LibraryCopyCache::find_i(
    const std::string& source, const FileIdentity& identity) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
        return e.settled && e.identity == identity && e.copy->source == source;
    });
    if (it == entries_.end() || !present_i(it)) return nullptr;
    entries_.splice(entries_.begin(), entries_, it);
    return it->copy;
}

std::shared_ptr<const LibraryCopyCache::Copy> LibraryCopyCache::find_content_i(
    const std::string& source, const std::string& sha256) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) {
        return e.copy->sha256 == sha256 && e.copy->source == source;
    });
    if (it == entries_.end() || !present_i(it)) return nullptr;
    return it->copy;
}

void LibraryCopyCache::insert_i(std::shared_ptr<const Copy> copy, const FileIdentity& identity,
                                bool proven) {
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return e.copy == copy; });
    if (it != entries_.end()) {
        // The same content read again: the file's newer identity now stands for it.
        it->identity = identity;
        it->settled = proven;
        entries_.splice(entries_.begin(), entries_, it);
        return;
    }
    bytes_ += copy->bytes;
    entries_.push_front(Entry{std::move(copy), identity, proven});
    evict_i();
}

void LibraryCopyCache::evict_i() {
    while (!entries_.empty() && (entries_.size() > max_entries_ || bytes_ > max_bytes_)) {
        bytes_ -= entries_.back().copy->bytes;
        entries_.pop_back();
    }
}

void LibraryCopyCache::clear_i() {
    entries_.clear();
    bytes_ = 0;
}

}  // namespace nonstop::detail
