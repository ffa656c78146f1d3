// Verified private copies of library files, kept after their library unloads so that loading an
// unchanged file again skips reading, checking, hashing and copying it.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

namespace nonstop::detail {

/// The identity of a library file on disk: a file rewritten in place or replaced gets a new one
/// (see LibraryCopyCache for when an identity is trusted to mean "same content").
struct FileIdentity {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::int64_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    bool operator==(const FileIdentity&) const = default;
};

/// A bounded, least-recently-used set of private copies, keyed by the library's real path and
/// the identity its file had when the copy was verified. Not thread-safe: the version
/// repository calls it under its own lock (`_i`).
///
/// An identity is trusted only when it is settled: the file's last modification and change
/// were at least `settle` older than the moment its content was read. A later write then stamps
/// a later time (file system time stamps are at most a few milliseconds coarse, 2 s on FAT), so
/// an equal identity means unchanged content. A file changed more recently than that is read and
/// hashed again on every load; its copy is still reused when the content is the same.
/// Whatever the cache answers, what is loaded is a private copy whose content was checked: a
/// wrong answer could only load the file's previous content, never a partial or changing one.
class LibraryCopyCache {
public:
    /// One private copy; the file is never rewritten and is removed when the last holder (the
    /// cache, or a Library mapping it) lets go.
    struct Copy {
        ~Copy();
        std::string source;  // the library's real path
        std::string path;    // the private copy
        std::string sha256;
        std::uint64_t bytes = 0;
    };

    LibraryCopyCache(std::size_t max_entries, std::uint64_t max_bytes,
                     std::chrono::milliseconds settle);

    /// The copy of `source` verified with this settled identity, or null.
    std::shared_ptr<const Copy> find_i(const std::string& source, const FileIdentity& identity);
    /// The copy of `source` with this content, whatever the file's identity, or null.
    std::shared_ptr<const Copy> find_content_i(const std::string& source,
                                               const std::string& sha256);
    /// Remembers `copy` as verified with `identity`, trusted when `settled`; evicts the least
    /// recently used copies beyond the bounds (their files go once nothing maps them).
    void insert_i(std::shared_ptr<const Copy> copy, const FileIdentity& identity, bool settled);
    /// True when `identity`, read at `read_at`, proves the content (see the class comment).
    bool settled(const FileIdentity& identity, std::chrono::system_clock::time_point read_at) const;
    void clear_i();

private:
    struct Entry {
        std::shared_ptr<const Copy> copy;
        FileIdentity identity;
        bool settled = false;
    };
    bool present_i(std::list<Entry>::iterator it);
    void evict_i();
    std::list<Entry> entries_;  // most recently used first
    std::size_t max_entries_;
    std::uint64_t max_bytes_;
    std::uint64_t bytes_ = 0;
    std::chrono::milliseconds settle_;
};

}  // namespace nonstop::detail
