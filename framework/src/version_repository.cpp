#include "version_repository.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOST_DLL_USE_STD_FS
#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "nonstop/error.hpp"

namespace nonstop::detail {

namespace fs = std::filesystem;

struct Library::Handle {
    boost::dll::shared_library library;
};

Library::~Library() {
    handle_.reset();  // dlclose, before copy_ may remove the file
}

Module* Library::create() const {
    Module* m = nullptr;
    try {
        m = descriptor_->create();
    } catch (const std::exception& e) {
        throw Error("the factory of library '" + path_ + "' threw: " + e.what());
    } catch (...) {
        throw Error("the factory of library '" + path_ + "' threw a non-standard exception");
    }
    if (m == nullptr) throw Error("the factory of library '" + path_ + "' returned no module");
    return m;
}

void Library::destroy(Module* m) const { descriptor_->destroy(m); }

namespace {

std::int64_t nanoseconds(const struct timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

FileIdentity identity_of(const struct stat& st) {
    return FileIdentity{
        static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
        static_cast<std::int64_t>(st.st_size), nanoseconds(st.st_mtim), nanoseconds(st.st_ctim)};
}

// The first `size` bytes of an open file, as they are now.
std::string read_all(int fd, std::int64_t size) {
    std::string content(static_cast<std::size_t>(size), '\0');
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n =
            ::pread(fd, content.data() + done, content.size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    content.resize(done);  // a file truncated meanwhile is read as it now is
    return content;
}

// The whole file as it is now, read through one descriptor that does not follow a symbolic
// link (the path is already resolved) and checked with fstat to be a regular file.
std::string read_content(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) throw Error("cannot open library '" + path + "': " + std::strerror(errno));
    struct stat st {};
    std::string content;
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular) content = read_all(fd, st.st_size);
    ::close(fd);
    if (!regular) throw Error("library '" + path + "' is not a regular file");
    return content;
}

// `candidate` held by an O_PATH descriptor if it is a regular file, else -1: O_PATH opens no
// device or FIFO, and names the file for everything after (real path, identity, content).
int open_regular(const std::string& candidate, struct stat& st) {
    const int fd = ::open(candidate.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return -1;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The file held by the O_PATH descriptor `fd`, opened for reading; throws Error naming `path`.
int open_for_reading(int fd, const std::string& path, const FileIdentity& identity) {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int in = ::open(link, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in < 0) in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    if (in < 0) throw Error("cannot open library '" + path + "': " + std::strerror(errno));
    struct stat st {};
    if (::fstat(in, &st) == 0 && identity.device == static_cast<std::uint64_t>(st.st_dev) &&
        identity.inode == static_cast<std::uint64_t>(st.st_ino))
        return in;
    ::close(in);
    throw Error("library '" + path + "' was replaced while it was being opened");
}

// The real path of the file open as `fd` (symbolic links resolved), as the kernel names it:
// one readlink instead of one per path component; fs::canonical where /proc cannot tell.
std::string real_path(int fd, const std::string& candidate) {
    char link[32];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char target[PATH_MAX];
    const ssize_t n = ::readlink(link, target, sizeof target);
    if (n > 0 && static_cast<std::size_t>(n) < sizeof target && target[0] == '/') {
        std::string path(target, static_cast<std::size_t>(n));
        if (!path.ends_with(" (deleted)")) return path;
    }
    std::error_code ec;
    const fs::path path = fs::canonical(candidate, ec);
    if (ec) throw Error("library file '" + candidate + "' does not exist");
    return path.string();
}

template <class T>
bool within(const std::string& content, std::uint64_t offset, std::uint64_t count) {
    return offset <= content.size() && count <= (content.size() - offset) / sizeof(T);
}

// One sentence on why `content` cannot be loaded here, empty when it is a complete ELF shared
// object for this machine: headers, program and section header tables and every loaded
// segment inside the file (a partly copied library would otherwise fault the process).
std::string elf_problem(const std::string& content) {
    if (content.size() < sizeof(Elf64_Ehdr) || std::memcmp(content.data(), ELFMAG, SELFMAG) != 0)
        return "it is not an ELF file";
    Elf64_Ehdr eh;
    std::memcpy(&eh, content.data(), sizeof eh);
    if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_machine != EM_X86_64)
        return "it is an ELF file for another machine";
    if (eh.e_type != ET_DYN) return "it is not a shared object";
    if (eh.e_phentsize != sizeof(Elf64_Phdr) ||
        !within<Elf64_Phdr>(content, eh.e_phoff, eh.e_phnum))
        return "it is truncated (its program headers lie past its end)";
    if (eh.e_shnum != 0 && (eh.e_shentsize != sizeof(Elf64_Shdr) ||
                            !within<Elf64_Shdr>(content, eh.e_shoff, eh.e_shnum)))
        return "it is truncated (its section headers lie past its end)";
    for (std::uint16_t i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph;
        std::memcpy(&ph, content.data() + eh.e_phoff + i * sizeof ph, sizeof ph);
        if (ph.p_type == PT_LOAD &&
            (ph.p_offset > content.size() || ph.p_filesz > content.size() - ph.p_offset))
            return "it is truncated (a loadable segment lies past its end)";
    }
    return {};
}

std::string sha256_hex(const std::string& content) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(content.data(), content.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw Error("cannot compute the SHA-256 of a library");
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

// Writes `content` to a new file in `dir` that nobody else can have made or replaced.
std::string write_copy(const std::string& dir, const std::string& name, const std::string& content,
                       std::uint64_t n) {
    const std::string copy = dir + "/" + name + "." + std::to_string(n);
    const int fd = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        throw Error("cannot write a private copy of library '" + name +
                    "': " + std::strerror(errno));
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t n_written = ::write(fd, content.data() + done, content.size() - done);
        if (n_written < 0 && errno == EINTR) continue;
        if (n_written <= 0) break;
        done += static_cast<std::size_t>(n_written);
    }
    ::close(fd);
    if (done != content.size()) {
        ::unlink(copy.c_str());
        throw Error("cannot write a private copy of library '" + name + "'");
    }
    return copy;
}

}  // namespace

// A library file opened once: its real path, identity and content all come from this
// descriptor, so none of them can belong to a file swapped in between.
struct VersionRepository::Source {
    Source(int fd_, const std::string& candidate, const struct stat& st)
        : fd(fd_), identity(identity_of(st)) {
        try {
            path = real_path(fd, candidate);
        } catch (...) {
            ::close(fd);
            throw;
        }
    }
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;
    ~Source() { ::close(fd); }
    int fd;
    std::string path;
    FileIdentity identity;
};

VersionRepository::VersionRepository(const Config& config)
    : module_path_(config.module_path),
      copies_(config.library_cache_entries, config.library_cache_bytes, config.library_settle) {}

VersionRepository::~VersionRepository() {
    copies_.clear_i();
    // Copies still mapped by abandoned instances are unlinked too (the mapping stays valid).
    if (private_dir_.empty()) return;
    std::error_code ignored;
    fs::remove_all(private_dir_, ignored);
}

// A directory of this process's own, made with mkdtemp (mode 0700, an unpredictable name) under
// $XDG_RUNTIME_DIR when set, else the temporary directory: no other user can plant, replace or
// read what is loaded from it.
const std::string& VersionRepository::private_dir_i() {
    if (!private_dir_.empty()) return private_dir_;
    const char* runtime_dir = std::getenv("XDG_RUNTIME_DIR");
    std::error_code ec;
    const fs::path base =
        runtime_dir && *runtime_dir ? fs::path(runtime_dir) : fs::temp_directory_path(ec);
    std::string pattern = (base / "nonstop-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
        throw Error("cannot make a private directory for libraries in '" + base.string() +
                    "': " + std::strerror(errno));
    private_dir_ = pattern;
    return private_dir_;
}

void VersionRepository::set_module_path(std::vector<std::string> module_path) {
    std::lock_guard lock(mutex_);
    module_path_ = std::move(module_path);
}

std::vector<std::string> VersionRepository::module_path() const {
    std::lock_guard lock(mutex_);
    return module_path_;
}

// Resolves a library name against the module path (a name with '/' is used as given) and opens
// it; throws Error when no such file exists.
VersionRepository::Source VersionRepository::open_source(const std::string& library) const {
    if (library.empty()) throw Error("no library was named");
    struct stat st {};
    if (library.find('/') != std::string::npos) {
        const int fd = open_regular(library, st);
        if (fd < 0) throw Error("library file '" + library + "' does not exist");
        return Source(fd, library, st);
    }
    std::vector<std::string> dirs = module_path();
    for (const auto& dir : dirs) {
        const std::string candidate = (fs::path(dir) / library).string();
        if (const int fd = open_regular(candidate, st); fd >= 0) return Source(fd, candidate, st);
    }
    std::string where;
    for (const auto& dir : dirs) where += (where.empty() ? "" : ":") + dir;
    throw Error("library file '" + library + "' does not exist in the module path '" + where + "'");
}

std::shared_ptr<Library> VersionRepository::shared_i(const std::string& path,
                                                     const std::string& sha256) {
    for (auto it = libraries_.begin(); it != libraries_.end();) {
        auto loaded = it->lock();
        if (!loaded) {
            it = libraries_.erase(it);
            continue;
        }
        if (loaded->path() == path && loaded->sha256() == sha256) return loaded;
        ++it;
    }
    return nullptr;
}

std::shared_ptr<Library> VersionRepository::acquire(const std::string& library, const Vet& vet) {
    return load(stage(library, vet));
}

// A loaded library whose file is unchanged since it was read: shared without reading it again.
std::shared_ptr<Library> VersionRepository::unchanged_i(const std::string& path,
                                                        const FileIdentity& identity) {
    for (const auto& weak : libraries_)
        if (auto loaded = weak.lock();
            loaded && loaded->settled_ && loaded->path() == path && loaded->identity() == identity)
            return loaded;
    return nullptr;
}

// Reads, checks and hashes the file's content, then returns the library already loaded with
// that content, or takes the private copy of it: the cached one, or a new one written now.
std::shared_ptr<Library> VersionRepository::verify(Source& source, Library& lib) {
    const auto read_at = std::chrono::system_clock::now();
    const int in = open_for_reading(source.fd, source.path, source.identity);
    const std::string content = read_all(in, source.identity.size);
    // The identity that stands for this content is the one after reading: a write meanwhile
    // shows as a change too recent to be settled.
    struct stat st {};
    const int stat_error = ::fstat(in, &st) == 0 ? 0 : errno;
    ::close(in);
    if (stat_error != 0)
        throw Error("cannot read library '" + source.path + "': " + std::strerror(stat_error));
    if (auto problem = elf_problem(content); !problem.empty())
        throw Error("library '" + source.path + "' cannot be loaded: " + problem);
    lib.identity_ = identity_of(st);
    // Only the whole file, as it was when read, may stand for it later.
    lib.settled_ = static_cast<std::int64_t>(content.size()) == lib.identity_.size &&
                   copies_.settled(lib.identity_, read_at);
    lib.sha256_ = sha256_hex(content);
    std::lock_guard lock(mutex_);
    if (auto loaded = shared_i(source.path, lib.sha256_)) return loaded;
    auto copy = copies_.find_content_i(source.path, lib.sha256_);
    if (!copy) {
        // Loaded from a private copy of the content just checked: the file itself may be
        // rewritten in place, truncated or removed meanwhile without touching what is mapped.
        // A copy is never rewritten, so dlopen() handing back an older handle of the same copy
        // hands back the same content.
        auto fresh = std::make_shared<LibraryCopyCache::Copy>();
        fresh->source = source.path;
        fresh->sha256 = lib.sha256_;
        fresh->bytes = content.size();
        fresh->path = write_copy(private_dir_i(), fs::path(source.path).filename().string(),
                                 content, ++copied_);
        copy = std::move(fresh);
    }
    copies_.insert_i(copy, lib.identity_, lib.settled_);
    lib.copy_ = std::move(copy);
    return nullptr;
}

std::shared_ptr<Library> VersionRepository::stage(const std::string& library, const Vet& vet) {
    Source source = open_source(library);
    auto share = [&](std::shared_ptr<Library> loaded) {
        if (vet) vet(loaded->path(), loaded->mapped_path());
        return loaded;
    };
    std::shared_ptr<Library> lib(new Library());  // from here on, ~Library lets go of its copy
    lib->path_ = source.path;
    {
        std::unique_lock lock(mutex_);
        if (auto loaded = unchanged_i(source.path, source.identity)) {
            lock.unlock();
            return share(std::move(loaded));
        }
        if (auto copy = copies_.find_i(source.path, source.identity)) {
            if (auto loaded = shared_i(source.path, copy->sha256)) {
                lock.unlock();
                return share(std::move(loaded));
            }
            lib->identity_ = source.identity;
            lib->settled_ = true;
            lib->sha256_ = copy->sha256;
            lib->copy_ = std::move(copy);
        }
    }
    if (!lib->copy_)
        if (auto loaded = verify(source, *lib)) return share(std::move(loaded));
    lib->mapped_path_ = lib->copy_->path;
    // Outside the lock: a preflight takes as long as the candidate's initialize().
    if (vet) vet(lib->path_, lib->mapped_path_);
    return lib;
}

std::shared_ptr<Library> VersionRepository::load(std::shared_ptr<Library> staged) {
    if (staged->handle_) return staged;  // shared: loaded already
    std::lock_guard lock(mutex_);
    // Another target (or a transaction in between) loaded the same content first.
    if (auto loaded = shared_i(staged->path(), staged->sha256())) return loaded;
    map(*staged);
    libraries_.push_back(staged);
    return staged;
}

std::shared_ptr<Library> VersionRepository::load_in_place(const std::string& copy,
                                                          const std::string& path) {
    std::shared_ptr<Library> lib(new Library());
    lib->path_ = path;
    lib->mapped_path_ = copy;
    map(*lib);
    return lib;
}

namespace {
struct MappedObject {
    bool thread_locals;  // it has a TLS module id
    const char* name;    // its path, valid while it is mapped
};

// The objects mapped in the process now, each known by its program headers.
std::unordered_map<const void*, MappedObject> mapped_objects() {
    std::unordered_map<const void*, MappedObject> objects;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
            (*static_cast<std::unordered_map<const void*, MappedObject>*>(out))[info->dlpi_phdr] = {
                info->dlpi_tls_modid != 0, info->dlpi_name};
            return 0;
        },
        &objects);
    return objects;
}

std::string file_name(const char* path) {
    const char* slash = std::strrchr(path, '/');
    return slash != nullptr ? slash + 1 : path;
}

// The names a loaded object needs (DT_NEEDED).
std::vector<std::string> needed(void* handle) {
    link_map* map = nullptr;
    if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) != 0 || map == nullptr || map->l_ld == nullptr)
        return {};
    ElfW(Addr) strings = 0;
    std::vector<ElfW(Xword)> offsets;
    for (const ElfW(Dyn)* d = map->l_ld; d->d_tag != DT_NULL; ++d) {
        if (d->d_tag == DT_STRTAB) strings = d->d_un.d_ptr;
        if (d->d_tag == DT_NEEDED) offsets.push_back(d->d_un.d_val);
    }
    if (strings == 0) return {};
    if (strings < map->l_addr) strings += map->l_addr;  // not relocated in place (MIPS, RISC-V)
    std::vector<std::string> names;
    for (auto offset : offsets) names.emplace_back(reinterpret_cast<const char*>(strings + offset));
    return names;
}

// Objects that a module library's load brought into the process together with thread-locals
// (all of that load's, to be safe): a later library that needs one of them shares it, and a
// kept thread that ran it would keep it mapped as well. Process-wide, by file name.
class SharedThreadLocals {
public:
    // Whether the library just loaded (`handle`, from `copy`) has thread-locals through what it
    // needs: what its load brought in (`brought`, `brought_thread_locals`) or what an earlier
    // such load did.
    bool check(void* handle, const std::string& copy, const std::vector<std::string>& brought,
               bool brought_thread_locals) {
        std::lock_guard lock(mutex_);
        if (brought_thread_locals) {
            const std::string own = file_name(copy.c_str());
            for (const auto& name : brought)
                if (name != own) names_.insert(name);
            return true;
        }
        if (names_.empty()) return false;
        for (const auto& name : needed(handle))
            if (names_.count(name)) return true;
        return false;
    }

private:
    std::mutex mutex_;
    std::unordered_set<std::string> names_;
};

SharedThreadLocals& shared_thread_locals() {
    static auto* shared = new SharedThreadLocals();  // never destroyed: used until the end
    return *shared;
}
}  // namespace

void VersionRepository::map(Library& lib) {
    const std::string& path = lib.path_;
    auto handle = std::make_unique<Library::Handle>();
    boost::dll::fs::error_code ec;
    // What this load brings in besides the library (its private dependencies) is unmapped with
    // it: one with thread-locals counts as the library's own (see Library::thread_locals()).
    const auto before = mapped_objects();
    handle->library.load(lib.mapped_path_, ec,
                         boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    std::vector<std::string> brought;
    bool brought_thread_locals = false;
    for (const auto& [phdr, object] : mapped_objects()) {
        if (before.count(phdr)) continue;
        brought.push_back(file_name(object.name));
        brought_thread_locals = brought_thread_locals || object.thread_locals;
    }
    if (ec) {
        // The loader's own sentence (Boost.DLL's error code only says that dlopen failed).
        const char* reason = ::dlerror();
        throw Error("cannot load library '" + path +
                    "': " + (reason ? std::string(reason) : ec.message()));
    }
    lib.handle_ = std::move(handle);  // from here on, ~Library unloads it
    auto& so = lib.handle_->library;
    if (!so.has("nonstop_module_abi") || !so.has("nonstop_module_descriptor"))
        throw Error("library '" + path +
                    "' has no nonstop module factory (was it built with NONSTOP_MODULE?)");
    const auto abi = so.get<std::uint32_t()>("nonstop_module_abi")();
    if (abi != abi_version())
        throw Error("library '" + path + "' was built for nonstop ABI " + std::to_string(abi) +
                    " but this runtime has ABI " + std::to_string(abi_version()));
    lib.descriptor_ = so.get<const ModuleDescriptor*()>("nonstop_module_descriptor")();
    if (lib.descriptor_ == nullptr || lib.descriptor_->create == nullptr ||
        lib.descriptor_->destroy == nullptr)
        throw Error("library '" + path + "' exports an empty module descriptor");
    lib.kind_ = lib.descriptor_->kind ? lib.descriptor_->kind : "";
    lib.version_ = lib.descriptor_->version ? lib.descriptor_->version : "";
    std::size_t tls_module = 0;  // 0: the library has no thread-locals of its own
    lib.thread_locals_ = shared_thread_locals().check(so.native(), lib.mapped_path_, brought,
                                                      brought_thread_locals) ||
                         ::dlinfo(so.native(), RTLD_DI_TLS_MODID, &tls_module) != 0 ||
                         tls_module != 0;
}

std::vector<LibraryInfo> VersionRepository::list() const {
    std::lock_guard lock(mutex_);
    std::vector<LibraryInfo> out;
    for (const auto& weak : libraries_) {
        if (auto lib = weak.lock())
            out.push_back({lib->path(), lib->mapped_path(), lib->kind(), lib->version(),
                           weak.use_count() - 1, lib->sha256()});
    }
    return out;
}

namespace {
// The kind and version a ModuleMarker declares, found in the file's bytes; false if none.
bool read_marker(const std::string& content, std::string& kind, std::string& version) {
    const std::string prefix(kModuleMarkerPrefix, sizeof kModuleMarkerPrefix);  // with its NUL
    const auto at = content.find(prefix);
    if (at == std::string::npos) return false;
    const auto kind_at = at + prefix.size();
    const auto kind_end = content.find('\0', kind_at);
    if (kind_end == std::string::npos) return false;
    const auto version_end = content.find('\0', kind_end + 1);
    if (version_end == std::string::npos) return false;
    kind = content.substr(kind_at, kind_end - kind_at);
    version = content.substr(kind_end + 1, version_end - kind_end - 1);
    return true;
}
}  // namespace

std::string VersionRepository::digest(const std::string& path) const {
    return sha256_hex(read_content(path));
}

std::vector<CatalogueEntry> VersionRepository::catalogue(const std::string& kind) const {
    std::vector<CatalogueEntry> out;
    std::error_code ec;
    for (const auto& dir : module_path()) {
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.find(".so") == std::string::npos || !it->is_regular_file(ec)) continue;
            CatalogueEntry e;
            std::string content;
            try {
                e.path = fs::canonical(it->path()).string();
                content = read_content(e.path);
            } catch (const std::exception&) {
                continue;  // unreadable: not listed
            }
            if (!elf_problem(content).empty() || !read_marker(content, e.kind, e.version)) continue;
            if (!kind.empty() && e.kind != kind) continue;
            e.sha256 = sha256_hex(content);
            if (std::none_of(out.begin(), out.end(), [&](auto& o) { return o.path == e.path; }))
                out.push_back(std::move(e));
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
        return std::tie(a.kind, a.version, a.path) < std::tie(b.kind, b.version, b.path);
    });
    return out;
}

}  // namespace nonstop::detail
