// Deploying a library can never crash the host: every library is loaded from a private copy of
// its content, checked to be a complete ELF shared object first, and a replacement must be the
// same kind of module.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "test_support.hpp"

namespace nonstop::test {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Rewrites `path` in place (same inode), as `cp` over an existing file does.
void overwrite(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
    out << content;
}

class LibraryTest : public RuntimeTest {
protected:
    void SetUp() override {
        RuntimeTest::SetUp();
        dir_ =
            fs::path(::testing::TempDir()) / ("nonstop-library-test-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override {
        RuntimeTest::TearDown();
        fs::remove_all(dir_);
    }
    std::string place(const std::string& name, const std::string& content) {
        const auto path = (dir_ / name).string();
        std::ofstream(path, std::ios::binary) << content;
        return path;
    }
    fs::path dir_;
};

TEST_F(LibraryTest, CopyOverALoadedLibraryChangesNothingUntilReplaceLoadsIt) {
    const auto path = place("libx.so", read_file(library("counter_v2")));
    ASSERT_TRUE(rt().load("m", path).ok());
    const auto first = rt().libraries().at(0).sha256;
    overwrite(path, read_file(library("counter_v3")));  // in place, while it is loaded
    send_numbered(rt(), "m", "x", 3);
    EXPECT_TRUE(wait_until([] { return events_of("m").size() == 3; }));
    EXPECT_EQ(events_of("m").back().version, "2");
    const auto report = rt().replace("m", path);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(rt().info("m")->version, "3");
    EXPECT_EQ(report.targets.at(0).sha256.size(), 64u);
    EXPECT_NE(report.targets.at(0).sha256, first);
}

TEST_F(LibraryTest, ATruncatedLibraryIsRefusedAndTheOldVersionServes) {
    const auto whole = read_file(library("counter_v2"));
    const auto path = place("libtrunc.so", whole.substr(0, 6 * 1024));
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto report = rt().replace("m", path);
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_EQ(report.reason, "library '" + path +
                                 "' cannot be loaded: it is truncated (its "
                                 "section headers lie past its end)");
    EXPECT_EQ(rt().load("n", path).outcome, Outcome::aborted);
    send_numbered(rt(), "m", "x", 2);
    EXPECT_TRUE(wait_until([] { return events_of("m").size() == 2; }));
    EXPECT_EQ(rt().info("m")->version, "1");
}

TEST_F(LibraryTest, LibrariesAreMappedFromAPrivateDirectoryRemovedAtTheEnd) {
    ::setenv("XDG_RUNTIME_DIR", dir_.c_str(), 1);
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    ::unsetenv("XDG_RUNTIME_DIR");
    const auto info = rt().libraries().at(0);
    const fs::path copy = info.mapped_path;
    const fs::path private_dir = copy.parent_path();
    EXPECT_EQ(private_dir.parent_path(), dir_);
    EXPECT_EQ(private_dir.filename().string().rfind("nonstop-", 0), 0u);
    EXPECT_NE(private_dir.filename().string(), "nonstop-" + std::to_string(::getpid()));
    struct stat st {};
    ASSERT_EQ(::stat(private_dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(st.st_uid, ::getuid());
    EXPECT_TRUE(mapped(copy.string()));
    EXPECT_FALSE(mapped(library("counter_v1")));  // the operator's file is never mapped
    EXPECT_EQ(info.path, fs::canonical(library("counter_v1")).string());
    RuntimeTest::TearDown();
    EXPECT_FALSE(fs::exists(private_dir));
}

// A verified copy outlives its library's unload, so that loading the unchanged file again reuses
// it; the library itself is unmapped in between, and the copy goes with the runtime.
TEST_F(LibraryTest, AnUnchangedLibraryLoadedAgainReusesItsCopyAndIsUnmappedInBetween) {
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto first = rt().libraries().at(0);
    ASSERT_TRUE(rt().unload("m").ok());
    EXPECT_TRUE(rt().libraries().empty());
    EXPECT_FALSE(mapped("libcounter_v1.so"));
    EXPECT_TRUE(fs::exists(first.mapped_path));
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto again = rt().libraries().at(0);
    EXPECT_EQ(again.mapped_path, first.mapped_path);
    EXPECT_EQ(again.sha256, first.sha256);
    send_numbered(rt(), "m", "x", 2);
    EXPECT_TRUE(wait_until([] { return events_of("m").size() == 2; }));
    EXPECT_EQ(events_of("m").back().version, "1");
    ASSERT_TRUE(rt().unload("m").ok());
    RuntimeTest::TearDown();
    EXPECT_FALSE(fs::exists(first.mapped_path));
    EXPECT_FALSE(fs::exists(fs::path(first.mapped_path).parent_path()));
}

// `cp` over the file with content of the same size, its modification time put back: the file's
// change time, or a change too recent to trust time stamps, still makes the new content load.
TEST_F(LibraryTest, ALibraryRewrittenInPlaceWithItsSizeAndTimeKeptIsReadAgain) {
    auto v2 = read_file(library("counter_v2"));
    auto v3 = read_file(library("counter_v3"));
    const auto size = std::max(v2.size(), v3.size());
    v2.resize(size, '\0');  // bytes past the end of an ELF file change nothing it loads
    v3.resize(size, '\0');
    ASSERT_NE(v2, v3);
    const auto path = place("libsame.so", v2);
    const struct timespec past[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};  // atime, mtime
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), past, 0), 0);
    ASSERT_TRUE(rt().load("m", path).ok());
    EXPECT_EQ(rt().info("m")->version, "2");
    const auto first = rt().libraries().at(0).sha256;
    ASSERT_TRUE(rt().unload("m").ok());

    struct stat before {};
    ASSERT_EQ(::stat(path.c_str(), &before), 0);
    overwrite(path, v3);
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), past, 0), 0);
    struct stat after {};
    ASSERT_EQ(::stat(path.c_str(), &after), 0);
    ASSERT_EQ(after.st_ino, before.st_ino);
    ASSERT_EQ(after.st_size, before.st_size);
    ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);

    const auto report = rt().load("m", path);
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(rt().info("m")->version, "3");
    EXPECT_NE(rt().libraries().at(0).sha256, first);
    send_numbered(rt(), "m", "x", 1);
    EXPECT_TRUE(wait_until([] { return events_of("m").size() == 1; }));
    EXPECT_EQ(events_of("m").back().version, "3");
}

// The cache is bounded: the least recently used copy beyond it is removed from disk once no
// loaded library maps it; with no cache, a copy goes with its library as it always did.
TEST_F(LibraryTest, CopiesBeyondTheCacheBoundAreRemoved) {
    config.library_cache_entries = 1;
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    const auto v1 = rt().libraries().at(0).mapped_path;
    ASSERT_TRUE(rt().load("b", "libcounter_v2.so").ok());
    EXPECT_TRUE(fs::exists(v1));  // evicted from the cache, but still loaded
    ASSERT_TRUE(rt().unload("a").ok());
    EXPECT_FALSE(fs::exists(v1));
    EXPECT_FALSE(mapped("libcounter_v1.so"));
    const auto v2 = rt().libraries().at(0).mapped_path;
    ASSERT_TRUE(rt().unload("b").ok());
    EXPECT_TRUE(fs::exists(v2));  // the one copy kept
    RuntimeTest::TearDown();

    config.library_cache_entries = 0;
    ASSERT_TRUE(rt().load("a", "libcounter_v1.so").ok());
    const auto uncached = rt().libraries().at(0).mapped_path;
    ASSERT_TRUE(rt().unload("a").ok());
    EXPECT_FALSE(fs::exists(uncached));
}

// A copy removed behind the runtime's back (a temporary-file cleaner) is made again.
TEST_F(LibraryTest, ACachedCopyRemovedFromDiskIsMadeAgain) {
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto copy = rt().libraries().at(0).mapped_path;
    ASSERT_TRUE(rt().unload("m").ok());
    ASSERT_TRUE(fs::remove(copy));
    const auto report = rt().load("m", "libcounter_v1.so");
    ASSERT_TRUE(report.ok()) << report.to_string();
    EXPECT_NE(rt().libraries().at(0).mapped_path, copy);
    EXPECT_TRUE(fs::exists(rt().libraries().at(0).mapped_path));
    EXPECT_EQ(rt().info("m")->version, "1");
}

// A symbolic link in the module path re-pointed at another build loads that build: the name is
// resolved on every load, never remembered.
TEST_F(LibraryTest, ASymbolicLinkPointedElsewhereLoadsTheNewTarget) {
    config.module_path = {dir_.string()};
    const auto v1 = place("libcounter.so.1", read_file(library("counter_v1")));
    const auto v2 = place("libcounter.so.2", read_file(library("counter_v2")));
    fs::create_symlink(v1, dir_ / "libcounter.so");
    ASSERT_TRUE(rt().load("m", "libcounter.so").ok());
    EXPECT_EQ(rt().libraries().at(0).path, fs::canonical(v1).string());
    ASSERT_TRUE(rt().unload("m").ok());
    fs::remove(dir_ / "libcounter.so");
    fs::create_symlink(v2, dir_ / "libcounter.so");
    ASSERT_TRUE(rt().load("m", "libcounter.so").ok());
    EXPECT_EQ(rt().info("m")->version, "2");
    EXPECT_EQ(rt().libraries().at(0).path, fs::canonical(v2).string());
}

TEST_F(LibraryTest, AReplacementMustBeTheSameKindUnlessForced) {
    ASSERT_TRUE(rt().load("m", "libcounter_v1.so").ok());
    const auto report = rt().replace("m", "libfaulty_other_kind.so");
    EXPECT_EQ(report.outcome, Outcome::aborted);
    EXPECT_NE(report.reason.find("holds a module of kind 'other', but module 'm' is of kind "
                                 "'counter'"),
              std::string::npos)
        << report.reason;
    EXPECT_EQ(rt().info("m")->version, "1");
    EXPECT_FALSE(mapped("libfaulty_other_kind.so"));
    const auto forced = rt().replace("m", "libfaulty_other_kind.so", true);
    ASSERT_TRUE(forced.ok()) << forced.to_string();
    EXPECT_EQ(rt().info("m")->kind, "other");
    EXPECT_NE(forced.to_string().find("kind counter -> other (forced)"), std::string::npos);
}

}  // namespace
}  // namespace nonstop::test
