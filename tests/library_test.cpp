// Deploying a library can never crash the host: every library is loaded from a private copy of
// its content, checked to be a complete ELF shared object first, and a replacement must be the
// same kind of module.
#include <sys/stat.h>
#include <unistd.h>

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
