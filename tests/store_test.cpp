// The release store across restarts of a real host: nonstop-shell with --state-dir runs a Tcl
// batch, exits (or is killed), and runs again on the same state directory. The database is
// read directly with SQLite to check what a crash at any moment leaves behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nonstop/error.hpp>
#include <nonstop/issuer.hpp>
#include <nonstop/runtime.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "test_messages.hpp"

namespace {

namespace fs = std::filesystem;
namespace messages = nonstop::test::messages;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

const std::string kModules = NONSTOP_TEST_MODULE_DIR;

// nonstop-shell running a batch, its stdout and stderr on one pipe.
class Host {
public:
    Host(const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            ::dup2(fds[1], 2);
            std::vector<char*> argv;
            argv.push_back(const_cast<char*>(NONSTOP_SHELL_PATH));
            for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        fd_ = fds[0];
    }
    ~Host() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            wait();
        }
        if (fd_ >= 0) ::close(fd_);
    }
    /// The next line of output; empty at its end.
    std::optional<std::string> line() {
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string l = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                all_ += l + "\n";
                return l;
            }
            char chunk[4096];
            const ssize_t n = ::read(fd_, chunk, sizeof chunk);
            if (n <= 0) {
                if (buffer_.empty()) return std::nullopt;
                buffer_ += "\n";
                continue;
            }
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    /// Reads to the end of output and waits for the process; returns its wait status.
    int finish() {
        while (line()) {
        }
        return wait();
    }
    int wait() {
        int status = 0;
        if (pid_ > 0) ::waitpid(pid_, &status, 0);
        pid_ = -1;
        status_ = status;
        return status;
    }
    void kill9() {
        ::kill(pid_, SIGKILL);
        wait();
    }
    const std::string& output() const { return all_; }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buffer_, all_;
    int status_ = 0;
};

// The database as another process sees it.
class Db {
public:
    explicit Db(const std::string& path) {
        EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK)
            << path;
    }
    ~Db() { sqlite3_close(db_); }
    std::vector<std::vector<std::string>> rows(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        std::vector<std::vector<std::string>> out;
        if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
            ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
            return out;
        }
        while (sqlite3_step(s) == SQLITE_ROW) {
            std::vector<std::string> row;
            for (int i = 0; i < sqlite3_column_count(s); ++i) {
                const auto* t = sqlite3_column_text(s, i);
                row.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
            }
            out.push_back(std::move(row));
        }
        sqlite3_finalize(s);
        return out;
    }
    std::string one(const std::string& sql) {
        auto r = rows(sql);
        return r.empty() || r[0].empty() ? std::string() : r[0][0];
    }

private:
    sqlite3* db_ = nullptr;
};

class StoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/nonstop-store-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        state_ = dir_ + "/state";
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string batch(const std::string& text) {
        const std::string path = dir_ + "/batch-" + std::to_string(++batches_) + ".tcl";
        std::ofstream(path) << kPrelude << text;
        return path;
    }
    std::vector<std::string> args(const std::string& text, const std::string& modules = kModules) {
        return {"--module-path", modules, "--state-dir", state_, batch(text)};
    }
    /// Runs a batch to its end: {wait status, output}.
    std::pair<int, std::string> run(const std::string& text,
                                    const std::string& modules = kModules) {
        Host host(args(text, modules));
        const int status = host.finish();
        return {status, host.output()};
    }
    std::string db_path() const { return state_ + "/nonstop.db"; }

    // Waits for a module to have handled `n` messages (messages are served asynchronously).
    static constexpr const char* kPrelude = R"tcl(
proc handled {name n} {
    while {[dict get [nonstop info $name] handled] < $n} { after 1 }
}
proc show {name} {
    set i [nonstop info $name]
    puts "$name version=[dict get $i version] enabled=[dict get $i enabled]"
}
)tcl";

    std::string dir_, state_;
    int batches_ = 0;
};

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

TEST_F(StoreTest, RestartRestoresModulesVersionsEnabledStateAndCheckpoints) {
    auto [status, out] = run(R"(
nonstop load a libcounter_v1.so
nonstop load b libcounter_v1.so
nonstop replace b libcounter_v2.so
nonstop load c libcounter_v3.so
nonstop disable c
foreach i {1 2 3 4 5} { nonstop send a 1 m$i }
foreach i {1 2} { nonstop send b 1 m$i }
handled a 5
handled b 2
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    // The clean end (Tcl's exit) checkpointed every module before removing it.
    std::tie(status, out) = run(R"(
puts [nonstop modules]
show a
show b
show c
foreach c [nonstop checkpoint] { puts "[dict get $c name] state=[dict get $c bytes]" }
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("a b c\n"), std::string::npos) << out;
    EXPECT_NE(out.find("a version=1 enabled=1"), std::string::npos) << out;
    EXPECT_NE(out.find("b version=2 enabled=1"), std::string::npos) << out;
    EXPECT_NE(out.find("c version=3 enabled=0"), std::string::npos) << out;
    EXPECT_NE(out.find("a state=5\n"), std::string::npos) << out;
    EXPECT_NE(out.find("b state=2;0\n"), std::string::npos) << out;
}

TEST_F(StoreTest, AnExplicitCheckpointSurvivesAKill) {
    auto [status, out] = run(R"(
nonstop load a libcounter_v2.so
foreach i {1 2 3} { nonstop send a 1 m$i }
handled a 3
puts [nonstop checkpoint a]
foreach i {4 5} { nonstop send a 1 m$i }
handled a 5
exec kill -9 [pid]
)");
    ASSERT_TRUE(WIFSIGNALED(status)) << out;
    EXPECT_NE(out.find("saved 1"), std::string::npos) << out;
    std::tie(status, out) = run(R"(
puts "a state=[dict get [lindex [nonstop checkpoint a] 0] bytes]"
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("a state=3;0\n"), std::string::npos) << out;
    Db db(db_path());
    EXPECT_EQ(db.one("SELECT issuer FROM transactions WHERE command LIKE 'load a %'"),
              "local shell");
}

// kill -9 at varying points of a stream of group transactions (each replaces a and b together
// and takes a checkpoint): after every restart the database opens, its integrity check passes,
// and the stored release, like the restored one, has a and b on one version.
TEST_F(StoreTest, KillDuringTransactionsLeavesAWholeRelease) {
    // Versions 2 and 3 read each other's state (schema 2), so every transaction commits.
    const std::string loop = R"(
if {[nonstop modules] eq {}} {
    nonstop syn_load a libcounter_v2.so b libcounter_v2.so
}
puts "restored [dict get [nonstop info a] version] [dict get [nonstop info b] version]"
flush stdout
set v [dict get [nonstop info a] version]
for {set i 0} {1} {incr i} {
    set v [expr {$v == 2 ? 3 : 2}]
    nonstop syn_replace a libcounter_v$v.so b libcounter_v$v.so
    nonstop send a 1 x$i
    if {$i % 2} { nonstop checkpoint }
    puts "committed $v"
    flush stdout
}
)";
    std::string expected;  // the version the previous run's database had for both
    for (int iteration = 0; iteration < 8; ++iteration) {
        Host host(args(loop));
        auto first = host.line();
        ASSERT_TRUE(first) << host.output();
        if (!expected.empty())
            EXPECT_EQ(*first, "restored " + expected + " " + expected) << host.output();
        else
            EXPECT_EQ(*first, "restored 2 2");
        // Killed while the (iteration % 4 + 1)-th transaction after the restart is under way,
        // or, on every third iteration, as soon as the restored release is reported.
        const int commits = iteration % 3 == 2 ? 0 : iteration % 4 + 1;
        for (int c = 0; c < commits; ++c) {
            const auto line = host.line();
            ASSERT_TRUE(line && line->rfind("committed ", 0) == 0) << host.output();
        }
        host.kill9();

        Db db(db_path());
        EXPECT_EQ(db.one("PRAGMA integrity_check"), "ok");
        const auto release = db.rows(
            "SELECT module, version FROM release_modules WHERE which = 'permanent' ORDER BY "
            "module");
        ASSERT_EQ(release.size(), 2u) << host.output();
        EXPECT_EQ(release[0][0], "a");
        EXPECT_EQ(release[1][0], "b");
        EXPECT_EQ(release[0][1], release[1][1]) << "a mixed release after iteration " << iteration;
        expected = release[0][1];
    }
}

TEST_F(StoreTest, AChangedOrMissingLibraryIsAnErrorForThatModuleOnly) {
    const std::string lib = dir_ + "/lib";
    fs::create_directories(lib);
    for (const char* v : {"1", "2", "3"})
        fs::copy_file(kModules + "/libcounter_v" + v + ".so", lib + "/libcounter_v" + v + ".so");
    auto [status, out] = run(R"(
nonstop load a libcounter_v1.so
nonstop load b libcounter_v2.so
nonstop load c libcounter_v3.so
)",
                             lib);
    ASSERT_TRUE(exited_ok(status)) << out;
    // a's file now holds other bytes; c's is gone.
    fs::copy_file(lib + "/libcounter_v2.so", lib + "/libcounter_v1.so",
                  fs::copy_options::overwrite_existing);
    fs::remove(lib + "/libcounter_v3.so");
    std::tie(status, out) = run("puts \"running [nonstop modules]\"\nshow b\n", lib);
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("running b\n"), std::string::npos) << out;
    EXPECT_NE(out.find("b version=2 enabled=1"), std::string::npos) << out;
    EXPECT_NE(out.find("module 'a' version 1 was not restored: its library '" +
                       fs::canonical(lib).string() +
                       "/libcounter_v1.so' has changed since it "
                       "was committed"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("module 'c' version 3 was not restored: cannot open library"),
              std::string::npos)
        << out;
}

TEST_F(StoreTest, ASegfaultInAHandlerIsRecordedAndReportedAtTheNextStart) {
    if (kSanitized) GTEST_SKIP() << "the sanitizer's own handler reports fatal signals";
    auto [status, out] =
        run("nonstop load c libcrashing.so\nnonstop send c 1 x\nhandled c 1\n"
            "nonstop send c " +
            std::to_string(messages::kCrash) + " boom\nafter 30000\nputs survived\n");
    ASSERT_TRUE(WIFSIGNALED(status)) << out;
    EXPECT_EQ(WTERMSIG(status), SIGSEGV) << out;
    std::tie(status, out) = run(R"(
foreach c [nonstop crashes] {
    puts "crash [dict get $c module] [dict get $c version] [dict get $c signal]"
    puts "frames [llength [split [string trim [dict get $c backtrace]] \n]]"
}
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("the previous run died of SIGSEGV in module 'c' version 1"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("crash c 1 SIGSEGV\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("frames 0"), std::string::npos) << out;
    // Imported once: the next start does not report it again.
    std::tie(status, out) = run("puts \"crashes [llength [nonstop crashes]]\"\n");
    EXPECT_NE(out.find("crashes 1\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("previous run died"), std::string::npos) << out;
}

// A process that died while a transaction was provisional (here written into the database as
// the probation of issue 12 will leave it, with the black box's record of the crash) comes back
// on the permanent release, and the crash names that transaction.
// Probation (issue 12 item 1) in the store: a release stays provisional there until accepted;
// a process that ends during probation comes back on the permanent release; an accepted one
// is the permanent release; a rolled-back one is discarded.
TEST_F(StoreTest, AReleaseLeftProvisionalIsDiscardedAtTheNextStartAndAnAcceptedOneKept) {
    auto [status, out] =
        run("nonstop load a libcounter_v2.so\nnonstop probation 30\n"
            "nonstop replace a libcounter_v3.so\nshow a\n");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("a version=3"), std::string::npos) << out;
    // Never accepted: the process ended during its probation.
    std::tie(status, out) =
        run("show a\nnonstop probation 30\nnonstop replace a libcounter_v3.so\n"
            "nonstop load c libcounter_v1.so\nnonstop accept\n");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("a version=2 enabled=1"), std::string::npos) << out;
    // Accepted, with the module loaded during the probation.
    std::tie(status, out) =
        run("show a\nshow c\nnonstop probation 30\nnonstop replace a libcounter_v2.so\n"
            "nonstop rollback a\nshow a\n");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("a version=3 enabled=1\nc version=1 enabled=1\na version=3"),
              std::string::npos)
        << out;
    Db db(db_path());
    EXPECT_EQ(db.one("SELECT count(*) FROM releases WHERE which = 'provisional'"), "0");
    EXPECT_EQ(db.one("SELECT release_state FROM transactions WHERE command = 'replace a "
                     "libcounter_v2.so'"),
              "rolled back");
}

TEST_F(StoreTest, ACrashDuringProbationComesBackOnThePermanentRelease) {
    auto [status, out] = run("nonstop load a libcounter_v2.so\n");
    ASSERT_TRUE(exited_ok(status)) << out;
    std::string provisional;
    {
        Db db(db_path());
        const std::string v3 = kModules + "/libcounter_v3.so";
        db.rows(
            "INSERT INTO transactions(boot, runtime_id, started_ms, issuer, command, outcome, "
            "reason, release_state, report) VALUES(1, 99, 0, 'local shell', 'replace a v3', "
            "'committed', '', 'provisional', '')");
        const std::string id = db.one("SELECT max(id) FROM transactions");
        db.rows("INSERT INTO targets VALUES(" + id + ", 'a', 'replace', '" + v3 +
                "', '2', '3', 'counter', '')");
        db.rows(
            "INSERT INTO releases(which, transaction_id, quiescence_ms, limits) "
            "VALUES('provisional', " +
            id + ", 5000, '')");
        db.rows(
            "INSERT INTO release_modules(which, module, library, sha256, kind, version, enabled) "
            "VALUES('provisional', 'a', '" +
            v3 + "', '', 'counter', '3', 1)");
        std::ofstream(state_ + "/crash.log", std::ios::app)
            << "=== nonstop crash\npid 4242\ntime_ms 1000\nmodule a\nversion 3\nsignal 11 "
               "SIGSEGV\nbacktrace\nframe\n=== end\n";
        provisional = id;
    }
    std::tie(status, out) = run(R"(
show a
foreach c [nonstop crashes] {
    puts "crash [dict get $c module] [dict get $c version] [dict get $c signal] [dict get $c provisional_transaction]"
}
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("a version=2 enabled=1"), std::string::npos) << out;
    EXPECT_NE(out.find("crash a 3 SIGSEGV " + provisional + "\n"), std::string::npos) << out;
    EXPECT_NE(out.find("back on the permanent release: module 'a' version 3 died of SIGSEGV "
                       "while transaction " +
                       provisional + " was provisional"),
              std::string::npos)
        << out;
    Db db(db_path());
    EXPECT_EQ(db.one("SELECT release_state FROM transactions WHERE id = " + provisional),
              "rolled back");
    EXPECT_EQ(db.one("SELECT count(*) FROM releases WHERE which = 'provisional'"), "0");
}

// After the first command of a run, each command writes only the rows of the modules it
// changed (a load beside 10,000 modules writes one row, not 10,001): the release still comes
// back whole, with what was loaded, replaced, disabled and removed, during a probation too.
TEST_F(StoreTest, AReleaseWrittenAsChangesComesBackWhole) {
    auto [status, out] = run(R"(
foreach m {a b c d e} { nonstop load $m libcounter_v1.so }
nonstop replace b libcounter_v2.so
nonstop disable c
nonstop unload d
nonstop probation 30
nonstop replace a libcounter_v2.so
nonstop load f libcounter_v3.so
nonstop unload e
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    {
        // The probation's release is still provisional: its three changes, nothing else.
        Db db(db_path());
        EXPECT_EQ(db.one("SELECT group_concat(module || ':' || removed, ' ') FROM (SELECT * FROM "
                         "release_modules WHERE which = 'provisional' ORDER BY module)"),
                  "a:0 e:1 f:0");
        EXPECT_EQ(db.one("SELECT group_concat(module || ':' || version || ':' || enabled, ' ') "
                         "FROM (SELECT * FROM release_modules WHERE which = 'permanent' ORDER BY "
                         "module)"),
                  "a:1:1 b:2:1 c:1:0 e:1:1");
    }
    // Ended during its probation: back on the permanent release.
    std::tie(status, out) = run(R"(
puts "running [nonstop modules]"
foreach m [nonstop modules] { show $m }
nonstop probation 30
nonstop replace a libcounter_v3.so
nonstop load g libcounter_v2.so
nonstop unload b
nonstop accept
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    // The clean end of the first run checkpointed a at version 2, which version 1 cannot read:
    // a starts without it, and says so.
    EXPECT_NE(out.find("module 'a' version 1 was restored without its checkpoint (taken of "
                       "version 2): module 'a' version 1 failed to restore the state of version "
                       "none: version 1 cannot read state schema 2"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("running a b c e\na version=1 enabled=1\nb version=2 enabled=1\n"
                       "c version=1 enabled=0\ne version=1 enabled=1\n"),
              std::string::npos)
        << out;
    // Accepted: its changes applied to the permanent release.
    std::tie(status, out) = run(R"(
puts "running [nonstop modules]"
foreach m [nonstop modules] { show $m }
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("running a c e g\na version=3 enabled=1\nc version=1 enabled=0\n"
                       "e version=1 enabled=1\ng version=2 enabled=1\n"),
              std::string::npos)
        << out;
    Db db(db_path());
    EXPECT_EQ(db.one("SELECT count(*) FROM release_modules WHERE which = 'provisional'"), "0");
    EXPECT_EQ(db.one("SELECT count(*) FROM release_modules WHERE removed = 1"), "0");
}

// A database written by schema 1 (a provisional release written whole, no `delta` or `removed`
// column) is brought to schema 2 when it is opened, and read as it was written.
TEST_F(StoreTest, ASchemaOneDatabaseIsMigratedAndItsWholeReleasesRead) {
    auto [status, out] = run("nonstop load a libcounter_v1.so\nnonstop load b libcounter_v2.so\n");
    ASSERT_TRUE(exited_ok(status)) << out;
    {
        Db db(db_path());
        db.rows("ALTER TABLE release_modules DROP COLUMN removed");
        db.rows("ALTER TABLE releases DROP COLUMN delta");
        db.rows("PRAGMA user_version = 1");
        // As schema 1 left a probation: the whole release (b removed), provisional.
        db.rows(
            "INSERT INTO transactions(boot, runtime_id, started_ms, issuer, command, outcome, "
            "reason, release_state, report) VALUES(1, 99, 0, 'local shell', 'x', 'committed', "
            "'', 'provisional', '')");
        const std::string id = db.one("SELECT max(id) FROM transactions");
        db.rows("INSERT INTO releases VALUES('provisional', " + id + ", 5000, '')");
        db.rows(
            "INSERT INTO release_modules SELECT 'provisional', module, library, sha256, kind, "
            "version, enabled FROM release_modules WHERE which = 'permanent' AND module = 'a'");
    }
    std::tie(status, out) = run(R"(
puts "running [nonstop modules]"
nonstop load c libcounter_v3.so
)");
    ASSERT_TRUE(exited_ok(status)) << out;
    EXPECT_NE(out.find("running a b\n"), std::string::npos) << out;  // the provisional discarded
    Db db(db_path());
    EXPECT_EQ(db.one("PRAGMA user_version"), "2");
    EXPECT_EQ(db.one("SELECT group_concat(module, ' ') FROM (SELECT module FROM release_modules "
                     "WHERE which = 'permanent' ORDER BY module)"),
              "a b c");
}

bool mapped(const std::string& fragment) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find(fragment) != std::string::npos) return true;
    return false;
}

TEST_F(StoreTest, TheVersionCatalogueReadsLibrariesWithoutLoadingThem) {
    nonstop::Config config;
    config.module_path = {kModules};
    config.state_dir = state_;
    nonstop::Runtime rt(config);
    const auto all = rt.versions();
    std::map<std::string, std::string> counters;  // version → sha256
    for (const auto& e : all.libraries)
        if (e.kind == "counter" && e.path.find("libcounter_v") != std::string::npos)
            counters[e.version] = e.sha256;
    ASSERT_EQ(counters.size(), 3u);
    for (const auto& [version, sha] : counters) EXPECT_EQ(sha.size(), 64u) << version;
    EXPECT_FALSE(mapped("libcounter_v")) << "listing the catalogue loaded a library";
    EXPECT_FALSE(mapped("libcrashing")) << "listing the catalogue loaded a library";
    EXPECT_THROW(rt.versions("ghost"), nonstop::Error);

    ASSERT_TRUE(rt.load("a", "libcounter_v1.so").ok());
    {
        nonstop::IssuerScope issuer("console 127.0.0.1:1");
        ASSERT_TRUE(rt.replace("a", "libcounter_v2.so").ok());
    }
    const auto mine = rt.versions("a");
    EXPECT_EQ(mine.kind, "counter");
    for (const auto& e : mine.libraries) EXPECT_EQ(e.kind, "counter");
    ASSERT_EQ(mine.history.size(), 2u);
    EXPECT_EQ(mine.history[0].action, "load");
    EXPECT_EQ(mine.history[0].issuer, "host");
    EXPECT_EQ(mine.history[1].new_version, "2");
    EXPECT_EQ(mine.history[1].issuer, "console 127.0.0.1:1");
    EXPECT_EQ(rt.history().back().issuer, "console 127.0.0.1:1");
}

TEST_F(StoreTest, AStoreThatCannotBeOpenedIsOneSentence) {
    fs::create_directories(state_);
    fs::create_symlink(dir_ + "/elsewhere.db", db_path());
    nonstop::Config config;
    config.state_dir = state_;
    try {
        nonstop::Runtime rt(config);
        FAIL() << "a symbolic link was followed";
    } catch (const nonstop::Error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot open the release store '" + db_path() + "'"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_FALSE(fs::exists(dir_ + "/elsewhere.db"));
    auto [status, out] = run("puts unreachable\n");
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
    EXPECT_NE(out.find("nonstop-shell: cannot open the release store"), std::string::npos) << out;
    EXPECT_EQ(out.find("unreachable"), std::string::npos) << out;
}

TEST_F(StoreTest, OneProcessAtATimeUsesAStateDirectory) {
    nonstop::Config config;
    config.state_dir = state_;
    nonstop::Runtime first(config);
    try {
        nonstop::Runtime second(config);
        FAIL() << "two runtimes share a state directory";
    } catch (const nonstop::Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "the state directory '" + state_ + "' is in use by another process");
    }
    EXPECT_EQ(fs::status(state_).permissions() & fs::perms::all, fs::perms::owner_all);
}

}  // namespace
