// The version-control repository (thesis 3.3.4, table 4.5): every module library the process has
// loaded, what it declares, and how many module instances still run its code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "library_copy_cache.hpp"
#include "nonstop/config.hpp"
#include "nonstop/library_info.hpp"
#include "nonstop/module.hpp"
#include "nonstop/store_records.hpp"

namespace nonstop::detail {

/// One loaded module library. It stays mapped while a shared_ptr to it lives; every module
/// instance created from it holds one, so the last instance destroyed unloads it.
class Library {
public:
    ~Library();
    Library(const Library&) = delete;
    Library& operator=(const Library&) = delete;

    /// The library's real path (symbolic links resolved).
    const std::string& path() const { return path_; }
    /// The file actually mapped: a private copy of `path()`'s content as it was read, so that
    /// the file can be rewritten or removed while the library is loaded. Copies are never
    /// rewritten: one name always holds one content.
    const std::string& mapped_path() const { return mapped_path_; }
    /// SHA-256 of that content, in hexadecimal.
    const std::string& sha256() const { return sha256_; }
    const std::string& kind() const { return kind_; }
    const std::string& version() const { return version_; }
    const FileIdentity& identity() const { return identity_; }
    /// The library, or a dependency that its load brought in or that it shares with an earlier
    /// library whose load did (unloaded with them), has thread-locals (or the loader could not
    /// say): its instances never run on a reused thread (Config::module_thread_keep), since
    /// glibc keeps a library mapped until the threads that registered its thread-local
    /// destructors end.
    bool thread_locals() const { return thread_locals_; }
    /// Creates one instance through the library's factory; throws Error naming the library.
    Module* create() const;
    /// Destroys an instance with the library's own code.
    void destroy(Module* m) const;

private:
    friend class VersionRepository;
    Library() = default;
    struct Handle;
    std::unique_ptr<Handle> handle_;
    const ModuleDescriptor* descriptor_ = nullptr;
    std::string path_, mapped_path_, kind_, version_, sha256_;
    FileIdentity identity_;
    bool settled_ = false;  // identity_ proves the content (LibraryCopyCache)
    bool thread_locals_ = true;
    // The private copy mapped (none for load_in_place); its file goes with its last holder.
    std::shared_ptr<const LibraryCopyCache::Copy> copy_;
};

class VersionRepository {
public:
    /// `config.module_path`: directories searched for a library named without a '/';
    /// `config.library_cache_*`: the verified copies kept after their library unloads.
    explicit VersionRepository(const Config& config = {});
    ~VersionRepository();

    /// Loads (or shares, when already loaded with the same content) the library: its content
    /// is read once, checked to be a complete ELF shared object for this machine, copied into
    /// the repository's private directory and loaded from there (now-binding, local symbols);
    /// the ABI and the factory are checked before anything is created. A file unchanged since
    /// an earlier load reuses that verified copy (LibraryCopyCache). Throws Error with a
    /// one-sentence reason.
    /// `vet`, when given, is called with the real path and the private copy before that copy
    /// is loaded (or with the copy already loaded, when the library is shared): what it throws
    /// fails the acquisition with nothing of the library run in this process (preflight).
    using Vet = std::function<void(const std::string& path, const std::string& copy)>;
    std::shared_ptr<Library> acquire(const std::string& library, const Vet& vet = {});
    /// acquire() in two steps, for a library to be vetted now and loaded later: stage() reads,
    /// checks, copies and vets it, and returns it not yet loaded (or shared, already loaded);
    /// load() loads what stage() returned. Both throw Error as acquire() does.
    std::shared_ptr<Library> stage(const std::string& library, const Vet& vet = {});
    std::shared_ptr<Library> load(std::shared_ptr<Library> staged);
    /// Loads the file `copy` as it is, without a copy of its own and without removing it (the
    /// preflight child loads the host's private copy this way); errors name `path`. The ABI
    /// and the factory are checked as acquire() does. Throws Error.
    static std::shared_ptr<Library> load_in_place(const std::string& copy, const std::string& path);
    /// Every library currently loaded.
    std::vector<LibraryInfo> list() const;
    /// SHA-256 of the library file at `path` as it is now (read, never loaded); throws Error
    /// naming the file when it is missing or unreadable.
    std::string digest(const std::string& path) const;
    /// Every module library in the module path, read from its file (never loaded, so none of
    /// its code runs): kind and version from its ModuleMarker, and its SHA-256. Only `kind`
    /// unless empty; sorted by kind, version and path.
    std::vector<CatalogueEntry> catalogue(const std::string& kind) const;
    void set_module_path(std::vector<std::string> module_path);
    std::vector<std::string> module_path() const;

private:
    struct Source;
    Source open_source(const std::string& library) const;
    std::shared_ptr<Library> verify(Source& source, Library& lib);
    static void map(Library& lib);
    std::shared_ptr<Library> shared_i(const std::string& path, const std::string& sha256);
    std::shared_ptr<Library> unchanged_i(const std::string& path, const FileIdentity& identity);
    const std::string& private_dir_i();
    mutable std::mutex mutex_;
    std::string private_dir_;  // mkdtemp, mode 0700; made on first use, removed at the end
    std::vector<std::string> module_path_;
    std::vector<std::weak_ptr<Library>> libraries_;
    LibraryCopyCache copies_;
    std::uint64_t copied_ = 0;
};

}  // namespace nonstop::detail
