#include "version_repository.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOST_DLL_USE_STD_FS
#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "nonstop/error.hpp"

namespace nonstop::detail {

namespace fs = std::filesystem;

struct Library::Handle {
    boost::dll::shared_library library;
};

Library::~Library() {
    handle_.reset();  // dlclose
    std::error_code ignored;
    if (owns_copy_ && !mapped_path_.empty()) fs::remove(mapped_path_, ignored);
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

FileIdentity identity_of(const struct stat& st) {
    return FileIdentity{
        static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
        static_cast<std::int64_t>(st.st_size),
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

FileIdentity identity_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error("library file '" + path + "' does not exist");
    return identity_of(st);
}

// The whole file as it is now, read through one descriptor that does not follow a symbolic
// link (the path is already resolved) and checked with fstat to be a regular file.
std::string read_content(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) throw Error("cannot open library '" + path + "': " + std::strerror(errno));
    struct stat st {};
    std::string content;
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular) {
        content.resize(static_cast<std::size_t>(st.st_size));
        std::size_t done = 0;
        while (done < content.size()) {
            const ssize_t n = ::read(fd, content.data() + done, content.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        content.resize(done);  // a file truncated meanwhile is read as it now is
    }
    ::close(fd);
    if (!regular) throw Error("library '" + path + "' is not a regular file");
    return content;
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

VersionRepository::VersionRepository(std::vector<std::string> module_path)
    : module_path_(std::move(module_path)) {}

VersionRepository::~VersionRepository() {
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

std::string VersionRepository::resolve(const std::string& library) const {
    if (library.empty()) throw Error("no library was named");
    std::error_code ec;
    if (library.find('/') != std::string::npos) {
        fs::path p = fs::canonical(library, ec);
        if (ec || !fs::is_regular_file(p, ec))
            throw Error("library file '" + library + "' does not exist");
        return p.string();
    }
    std::vector<std::string> dirs = module_path();
    for (const auto& dir : dirs) {
        fs::path p = fs::canonical(fs::path(dir) / library, ec);
        if (!ec && fs::is_regular_file(p, ec)) return p.string();
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

std::shared_ptr<Library> VersionRepository::stage(const std::string& library, const Vet& vet) {
    const std::string path = resolve(library);
    const FileIdentity identity = identity_of(path);
    auto share = [&](std::shared_ptr<Library> loaded) {
        if (vet) vet(loaded->path(), loaded->mapped_path());
        return loaded;
    };
    {
        // Unchanged on disk since it was loaded: shared without reading it again.
        std::unique_lock lock(mutex_);
        for (const auto& weak : libraries_)
            if (auto loaded = weak.lock();
                loaded && loaded->path() == path && loaded->identity() == identity) {
                lock.unlock();
                return share(std::move(loaded));
            }
    }
    const std::string content = read_content(path);
    if (auto problem = elf_problem(content); !problem.empty())
        throw Error("library '" + path + "' cannot be loaded: " + problem);
    std::shared_ptr<Library> lib(new Library());  // from here on, ~Library removes the copy
    lib->path_ = path;
    lib->identity_ = identity;
    lib->sha256_ = sha256_hex(content);
    {
        std::unique_lock lock(mutex_);
        if (auto loaded = shared_i(path, lib->sha256_)) {
            lock.unlock();
            return share(std::move(loaded));
        }
        // Loaded from a private copy of the content just checked: the file itself may be
        // rewritten in place, truncated or removed meanwhile without touching what is mapped
        // (and dlopen() never hands back the handle of an older copy).
        lib->mapped_path_ =
            write_copy(private_dir_i(), fs::path(path).filename().string(), content, ++copies_);
    }
    // Outside the lock: a preflight takes as long as the candidate's initialize().
    if (vet) vet(path, lib->mapped_path_);
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
    lib->owns_copy_ = false;
    map(*lib);
    return lib;
}

void VersionRepository::map(Library& lib) {
    const std::string& path = lib.path_;
    auto handle = std::make_unique<Library::Handle>();
    boost::dll::fs::error_code ec;
    handle->library.load(lib.mapped_path_, ec,
                         boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
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
