#include "version_repository.hpp"

#include <dlfcn.h>

#include <sys/stat.h>
#include <unistd.h>

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/shared_library.hpp>
#include <filesystem>
#include <fstream>

#include "nonstop/error.hpp"

namespace nonstop::detail {

namespace fs = std::filesystem;

struct Library::Handle {
    boost::dll::shared_library library;
};

Library::~Library() {
    handle_.reset();  // dlclose
    if (private_copy_) {
        std::error_code ignored;
        fs::remove(mapped_path_, ignored);
    }
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

FileIdentity identity_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error("library file '" + path + "' does not exist");
    return FileIdentity{
        static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
        static_cast<std::int64_t>(st.st_size),
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

}  // namespace

VersionRepository::VersionRepository(std::vector<std::string> module_path)
    : module_path_(std::move(module_path)) {}

VersionRepository::~VersionRepository() = default;

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
    if (library.find('/') != std::string::npos) {
        std::error_code ec;
        fs::path p = fs::absolute(library, ec);
        if (ec || !fs::is_regular_file(p, ec))
            throw Error("library file '" + library + "' does not exist");
        return fs::weakly_canonical(p, ec).string();
    }
    std::vector<std::string> dirs = module_path();
    for (const auto& dir : dirs) {
        std::error_code ec;
        fs::path p = fs::path(dir) / library;
        if (fs::is_regular_file(p, ec)) return fs::weakly_canonical(fs::absolute(p), ec).string();
    }
    std::string where;
    for (const auto& dir : dirs) where += (where.empty() ? "" : ":") + dir;
    throw Error("library file '" + library + "' does not exist in the module path '" + where + "'");
}

std::shared_ptr<Library> VersionRepository::acquire(const std::string& library) {
    const std::string path = resolve(library);
    const FileIdentity identity = identity_of(path);
    std::lock_guard lock(mutex_);
    bool same_path_loaded = false;
    for (auto it = libraries_.begin(); it != libraries_.end();) {
        auto loaded = it->lock();
        if (!loaded) {
            it = libraries_.erase(it);
            continue;
        }
        if (loaded->path() == path) {
            if (loaded->identity() == identity) return loaded;
            same_path_loaded = true;
        }
        ++it;
    }
    auto opened = open_i(path, identity, same_path_loaded);
    libraries_.push_back(opened);
    return opened;
}

std::shared_ptr<Library> VersionRepository::open_i(const std::string& path,
                                                   const FileIdentity& identity,
                                                   bool private_copy) {
    std::shared_ptr<Library> lib(new Library());
    lib->path_ = path;
    lib->identity_ = identity;
    lib->mapped_path_ = path;
    if (private_copy) {
        // dlopen() hands back the handle it already has for a path (or inode) that is still
        // loaded, so the changed file is mapped from a private copy instead.
        fs::path dir = fs::temp_directory_path() / ("nonstop-" + std::to_string(::getpid()));
        std::error_code ec;
        fs::create_directories(dir, ec);
        fs::path copy =
            dir / (fs::path(path).filename().string() + "." + std::to_string(++copies_));
        if (ec || !fs::copy_file(path, copy, fs::copy_options::overwrite_existing, ec))
            throw Error("cannot copy changed library '" + path + "' to '" + copy.string() +
                        "': " + ec.message());
        lib->mapped_path_ = copy.string();
        lib->private_copy_ = true;
    }
    auto handle = std::make_unique<Library::Handle>();
    boost::dll::fs::error_code ec;
    handle->library.load(lib->mapped_path_, ec,
                         boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    if (ec) {
        // The loader's own sentence (Boost.DLL's error code only says that dlopen failed).
        const char* reason = ::dlerror();
        if (lib->private_copy_) {
            std::error_code ignored;
            fs::remove(lib->mapped_path_, ignored);
        }
        throw Error("cannot load library '" + path +
                    "': " + (reason ? std::string(reason) : ec.message()));
    }
    lib->handle_ = std::move(handle);  // from here on, ~Library unloads it
    auto& so = lib->handle_->library;
    if (!so.has("nonstop_module_abi") || !so.has("nonstop_module_descriptor"))
        throw Error("library '" + path +
                    "' has no nonstop module factory (was it built with NONSTOP_MODULE?)");
    const auto abi = so.get<std::uint32_t()>("nonstop_module_abi")();
    if (abi != abi_version())
        throw Error("library '" + path + "' was built for nonstop ABI " + std::to_string(abi) +
                    " but this runtime has ABI " + std::to_string(abi_version()));
    lib->descriptor_ = so.get<const ModuleDescriptor*()>("nonstop_module_descriptor")();
    if (lib->descriptor_ == nullptr || lib->descriptor_->create == nullptr ||
        lib->descriptor_->destroy == nullptr)
        throw Error("library '" + path + "' exports an empty module descriptor");
    lib->kind_ = lib->descriptor_->kind ? lib->descriptor_->kind : "";
    lib->version_ = lib->descriptor_->version ? lib->descriptor_->version : "";
    return lib;
}

std::vector<LibraryInfo> VersionRepository::list() const {
    std::lock_guard lock(mutex_);
    std::vector<LibraryInfo> out;
    for (const auto& weak : libraries_) {
        if (auto lib = weak.lock())
            out.push_back({lib->path(), lib->mapped_path(), lib->kind(), lib->version(),
                           weak.use_count() - 1});
    }
    return out;
}

bool VersionRepository::loaded(const std::string& path) const {
    std::lock_guard lock(mutex_);
    for (const auto& weak : libraries_) {
        auto lib = weak.lock();
        if (lib && (lib->path() == path || lib->mapped_path() == path)) return true;
    }
    return false;
}

}  // namespace nonstop::detail
