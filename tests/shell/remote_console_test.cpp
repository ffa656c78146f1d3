// The remote console from a client's side: authentication, the safe interpreter, malformed
// input, confinement to the module path, the memory budget, commands stuck in the framework,
// TLS, the command log, and nonstop-shell --connect.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nonstop/console_client.hpp"
#include "nonstop/error.hpp"
#include "nonstop/remote_console.hpp"
#include "nonstop/runtime.hpp"
#include "nonstop/tcl_commands.hpp"
#include "probe.hpp"

namespace {

namespace fs = std::filesystem;
using nonstop::ConsoleClient;
using nonstop::RemoteConsole;

nonstop::Config config() {
    nonstop::Config c;
    c.module_path = {NONSTOP_TEST_MODULE_DIR};
    return c;
}

class RemoteConsoleTest : public ::testing::Test {
protected:
    void SetUp() override {
        RemoteConsole::Options o;
        o.token = "secret-token";
        o.max_command = 4096;
        o.auth_time_limit = std::chrono::seconds(1);
        console = std::make_unique<RemoteConsole>(runtime, o);
        console->start();
        ASSERT_NE(console->port(), 0);
    }
    void TearDown() override { console->stop(); }

    /// A connected, authenticated client.
    std::unique_ptr<ConsoleClient> client() {
        auto c = std::make_unique<ConsoleClient>();
        c->connect("127.0.0.1", console->port());
        auto r = c->authenticate("secret-token");
        EXPECT_TRUE(r.ok) << r.body;
        return c;
    }

    nonstop::Runtime runtime{config()};
    std::unique_ptr<RemoteConsole> console;
};

TEST_F(RemoteConsoleTest, WrongTokenIsRefusedAndTheConnectionClosed) {
    ConsoleClient c;
    c.connect("127.0.0.1", console->port());
    auto r = c.authenticate("guess");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode, "NONSTOP AUTH");
    EXPECT_EQ(r.body, "wrong token");
    EXPECT_TRUE(c.closed_by_peer());
}

// A TCP connection that never says anything.
int idle_connection(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    return fd;
}

// Everything the server sends until it closes the connection (or 30 s pass).
std::string until_closed(int fd) {
    std::string seen;
    char buffer[256];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 30'000) > 0) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        seen.append(buffer, static_cast<std::size_t>(n));
    }
    return seen;
}

TEST_F(RemoteConsoleTest, IdleUnauthenticatedConnectionsNeitherLockOutNorStay) {
    std::vector<int> idle;
    for (int i = 0; i < 8; ++i) idle.push_back(idle_connection(console->port()));
    auto c = client();  // the operator still gets in
    auto r = c->execute("nonstop modules");
    EXPECT_TRUE(r.ok) << r.body;
    // The oldest made room for newer ones (closed without a word); the rest are closed at the
    // time limit.
    EXPECT_EQ(until_closed(idle.front()), "");
    EXPECT_NE(until_closed(idle.back()).find("no token within the time limit"), std::string::npos);
    for (int fd : idle) ::close(fd);
    EXPECT_TRUE(c->execute("nonstop modules").ok);
}

TEST_F(RemoteConsoleTest, WrongTokensFromOnePeerAreAnsweredEverMoreSlowly) {
    std::vector<std::chrono::steady_clock::duration> took;
    for (int i = 0; i < 3; ++i) {
        ConsoleClient c;
        c.connect("127.0.0.1", console->port());
        const auto begin = std::chrono::steady_clock::now();
        EXPECT_EQ(c.authenticate("guess").errorcode, "NONSTOP AUTH");
        took.push_back(std::chrono::steady_clock::now() - begin);
    }
    // 100 ms, then 200 ms, then 400 ms at least.
    EXPECT_GE(took[2], std::chrono::milliseconds(400));
    client();  // the right token still works, and resets the delay
}

TEST_F(RemoteConsoleTest, NoCommandRunsBeforeAuthentication) {
    ConsoleClient c;
    c.connect("127.0.0.1", console->port());
    c.send_raw("nonstop load early libcounter_v1.so\nnonstop load early2 libcounter_v1.so\n");
    auto r = c.read_reply();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode, "NONSTOP AUTH");
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_TRUE(runtime.modules().empty());
}

TEST_F(RemoteConsoleTest, CommandsRunAndReportAsTheShellDoes) {
    auto c = client();
    auto r = c->execute("nonstop load a libcounter_v1.so");
    ASSERT_TRUE(r.ok) << r.body;
    EXPECT_NE(r.body.find("outcome committed"), std::string::npos) << r.body;
    r = c->execute("Replace a libcounter_v2.so");  // the thesis spelling works here too
    ASSERT_TRUE(r.ok) << r.body;
    r = c->execute("dict get [nonstop info a] version");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.body, "2");
    r = c->execute("nonstop replace a libcounter_v1.so");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode.rfind("NONSTOP ABORTED", 0), 0u) << r.errorcode;
    r = c->execute("nonstop info ghost");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.body, "no module is named 'ghost'");
    EXPECT_EQ(r.errorcode, "NONSTOP UNKNOWN_MODULE ghost");
    // A command may span lines.
    r = c->execute("set x [list \\\n a b]");
    EXPECT_EQ(r.body, "a b");
    r = c->execute("if {1} {\n  llength $x\n}");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.body, "2");
    EXPECT_EQ(runtime.info("a")->version, "2");
}

TEST_F(RemoteConsoleTest, FilesAndProcessesAreOutOfReach) {
    auto c = client();
    for (const char* command :
         {"exec true", "open /etc/passwd", "file exists /", "source /dev/null", "load libfoo.so",
          "socket localhost 22", "cd /", "pwd", "glob /*", "exit 3", "interp expose {} exec",
          "interp invokehidden {} exec true", "encoding system iso8859-1"}) {
        auto r = c->execute(command);
        EXPECT_FALSE(r.ok) << command << " -> " << r.body;
    }
    // The host is still here and the session still works.
    EXPECT_TRUE(c->execute("nonstop modules").ok);
}

TEST_F(RemoteConsoleTest, GarbageIsAnsweredWithoutHarm) {
    auto c = client();
    ASSERT_TRUE(c->execute("nonstop load g libcounter_v1.so").ok);
    auto r = c->execute("\x01\x02\xff garbage ]]] }} ;;");
    EXPECT_FALSE(r.ok);
    c->send_raw(std::string("abc\0def\n", 8));
    r = c->read_reply();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode, "NONSTOP GARBAGE");
    r = c->execute("nonstop");
    EXPECT_FALSE(r.ok);
    r = c->execute("nonstop send g notanumber x");
    EXPECT_EQ(r.errorcode, "NONSTOP USAGE");
    r = c->execute("dict get [nonstop info g] version");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.body, "1");
}

TEST_F(RemoteConsoleTest, AnOverlongLineClosesOnlyThatConnection) {
    ASSERT_TRUE(client()->execute("nonstop load long libcounter_v1.so").ok);
    auto c = client();
    c->send_raw(std::string(10000, 'x'));
    auto r = c->read_reply();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode, "NONSTOP TOO_LONG");
    EXPECT_TRUE(c->closed_by_peer());
    // An over-long command built from short lines (an unclosed brace) is refused the same way.
    auto d = client();
    d->send_raw("puts {\n");
    for (int i = 0; i < 100; ++i) d->send_raw(std::string(80, 'y') + "\n");
    r = d->read_reply();
    EXPECT_EQ(r.errorcode, "NONSTOP TOO_LONG");
    EXPECT_TRUE(d->closed_by_peer());
    EXPECT_EQ(client()->execute("dict get [nonstop info long] version").body, "1");
}

TEST_F(RemoteConsoleTest, AnIncompleteCommandAtEndOfInputIsAnswered) {
    auto c = client();
    c->send_raw("nonstop info {\n");
    // Half-close: the server sees the end of input but can still answer.
    ASSERT_EQ(::shutdown(c->fd_for_test(), SHUT_WR), 0);
    auto r = c->read_reply();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode, "NONSTOP INCOMPLETE");
}

TEST_F(RemoteConsoleTest, TwoClientsInTurnAndSideBySide) {
    {
        auto a = client();
        ASSERT_TRUE(a->execute("nonstop load turn libcounter_v1.so").ok);
        ASSERT_TRUE(a->execute("set mine 1").ok);
    }
    auto b = client();
    auto r = b->execute("dict get [nonstop info turn] version");
    EXPECT_EQ(r.body, "1");
    // Each connection has its own interpreter.
    EXPECT_FALSE(b->execute("set mine").ok);
    auto c = client();  // while b is still connected
    EXPECT_TRUE(c->execute("nonstop modules").ok);
    EXPECT_TRUE(b->execute("nonstop modules").ok);
}

TEST_F(RemoteConsoleTest, LibrariesOutsideTheModulePathAreRefused) {
    const fs::path outside =
        fs::temp_directory_path() / ("nonstop-outside-" + std::to_string(::getpid()));
    fs::create_directories(outside);
    fs::copy_file(fs::path(NONSTOP_TEST_MODULE_DIR) / "libcounter_v1.so",
                  outside / "libcounter_v1.so", fs::copy_options::overwrite_existing);
    auto c = client();
    const std::string lib = (outside / "libcounter_v1.so").string();
    for (const std::string& command :
         {"nonstop load out " + lib, "Load out " + lib, "nonstop syn_load out " + lib,
          "nonstop load out " + std::string(NONSTOP_TEST_MODULE_DIR) + "/../modules/../../" +
              fs::relative(lib, "/").string()}) {
        auto r = c->execute(command);
        EXPECT_FALSE(r.ok) << command;
        EXPECT_EQ(r.errorcode.rfind("NONSTOP REFUSED", 0), 0u) << command << ": " << r.errorcode;
    }
    // A symbolic link inside the module path to a file outside it, named by its bare name.
    const std::string link = "libescape-" + std::to_string(::getpid()) + ".so";
    fs::create_symlink(lib, fs::path(NONSTOP_TEST_MODULE_DIR) / link);
    auto escaped = c->execute("nonstop load esc " + link);
    fs::remove(fs::path(NONSTOP_TEST_MODULE_DIR) / link);
    EXPECT_EQ(escaped.errorcode.rfind("NONSTOP REFUSED", 0), 0u) << escaped.body;
    EXPECT_FALSE(runtime.info("esc"));
    auto r = c->execute("nonstop module_path " + outside.string());
    EXPECT_EQ(r.errorcode, "NONSTOP REFUSED");
    EXPECT_FALSE(runtime.info("out"));
    // A full path inside the module path is fine.
    r = c->execute("nonstop load in " + std::string(NONSTOP_TEST_MODULE_DIR) + "/libcounter_v1.so");
    EXPECT_TRUE(r.ok) << r.body;
    fs::remove_all(outside);
}

TEST(RemoteConsoleToken, AGeneratedTokenIsWrittenForItsOwnerOnly) {
    nonstop::Runtime runtime{config()};
    RemoteConsole::Options o;
    o.token_file =
        (fs::temp_directory_path() / ("nonstop-token-" + std::to_string(::getpid()))).string();
    RemoteConsole console(runtime, o);
    console.start();
    ASSERT_EQ(console.token_file(), o.token_file);
    struct stat st {};
    ASSERT_EQ(::stat(o.token_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::ifstream in(o.token_file);
    std::string token;
    std::getline(in, token);
    EXPECT_EQ(token, console.token());
    EXPECT_GE(token.size(), 32u);
    ConsoleClient c;
    c.connect("127.0.0.1", console.port());
    EXPECT_TRUE(c.authenticate(token).ok);
    console.stop();  // with a client still connected
    EXPECT_FALSE(fs::exists(o.token_file));
}

TEST_F(RemoteConsoleTest, ValuesBeyondTheSessionsBudgetAreErrorsAndTheSessionGoesOn) {
    auto c = client();
    ASSERT_TRUE(c->execute("nonstop load m libcounter_v1.so").ok);
    ASSERT_TRUE(c->execute("set b [string repeat x 40000000]; string length $b").ok);
    for (const char* command : {
             "set a [string repeat x 1100000000]; append a $a",
             "append b $b",
             "lappend b $b",
             "lrepeat 100000000 abc",
             "join [lrepeat 1000000 a] [string repeat y 1000]",
             "format %2000000000s x",
             "format %*s 2000000000 x",
             "string cat $b $b",
             "concat $b $b",
             "list $b $b",
             "set c $b$b",
             "string map [list x [string repeat z 100]] $b",
             "binary format x2000000000",
             "regsub -all {} $b $b",
             "subst {$b$b}",
             "dict set d k $b; dict append d k $b",
             "proc grow {} {set s [string repeat x 40000000]; append s $s}; grow",
             "proc twice {v} {return [list $v $v]}; twice $b",
         }) {
        auto r = c->execute(command);
        EXPECT_FALSE(r.ok) << command;
        EXPECT_EQ(r.errorcode.rfind("NONSTOP MEMORY", 0), 0u) << command << ": " << r.errorcode;
        EXPECT_NE(r.body.find("limit"), std::string::npos) << r.body;
    }
    // A child interpreter would not have the wrappers.
    EXPECT_FALSE(c->execute("interp create child").ok);
    // The session, the host and its module are still here.
    EXPECT_EQ(c->execute("string length $b").body, "40000000");
    EXPECT_EQ(c->execute("dict get [nonstop info m] version").body, "1");
    nonstop::Message still;
    still.type = 1;
    still.payload = "still serving";
    EXPECT_TRUE(runtime.send("m", still));
    // Values each within the limit, but together beyond the session's budget.
    ASSERT_TRUE(c->execute("unset b d").ok);
    nonstop::ConsoleClient::Reply r;
    int stored = 0;
    for (; stored < 10; ++stored) {
        r = c->execute("set v" + std::to_string(stored) + " [string repeat x 40000000]; list");
        if (!r.ok) break;
    }
    EXPECT_EQ(r.errorcode.rfind("NONSTOP MEMORY", 0), 0u) << r.errorcode;
    EXPECT_NE(r.body.find("budget"), std::string::npos) << r.body;
    EXPECT_EQ(stored, 6);  // 6 x 40 MB fit in 256 MiB, a 7th does not
    EXPECT_TRUE(c->execute("unset v0; set v0 [string repeat x 40000000]; list").ok);
    // Locals count too: a recursion keeping a large value at each level.
    ASSERT_TRUE(c->execute("foreach v [info vars v*] {unset $v}").ok);
    r = c->execute("proc deep {n} {set mine [string repeat x 40000000]; deep [incr n]}; deep 0");
    EXPECT_EQ(r.errorcode.rfind("NONSTOP MEMORY", 0), 0u) << r.errorcode;
    EXPECT_TRUE(c->execute("info exists mine").ok);
}

TEST_F(RemoteConsoleTest, WhatOnlyTclCanRefuseEndsTheSessionNotTheHost) {
#ifdef __SANITIZE_ADDRESS__
    GTEST_SKIP() << "the ended session's interpreter and values are left allocated on purpose";
#endif
    ASSERT_TRUE(client()->execute("nonstop load p libcounter_v1.so").ok);
    auto c = client();
    ASSERT_TRUE(c->execute("set b [string repeat x 40000000]; list").ok);
    // One word of 60 references: no command sees the 2.4 GB before Tcl gives up building it.
    std::string word;
    for (int i = 0; i < 60; ++i) word += "$b";
    auto r = c->execute("set c " + word);
    EXPECT_EQ(r.errorcode, "NONSTOP PANIC") << r.body;
    EXPECT_TRUE(c->closed_by_peer());
    auto d = client();
    EXPECT_EQ(d->execute("dict get [nonstop info p] version").body, "1");
    EXPECT_TRUE(d->execute("set x [string repeat y 1000]; string length $x").ok);
}

TEST(RemoteConsoleStuck, ACommandStuckInTheFrameworkTimesOutAloneAndDoesNotHoldStop) {
    probe::close_gate("hang");
    nonstop::Config stuck_config = config();
    stuck_config.initialize_timeout = std::chrono::seconds(120);
    nonstop::Runtime runtime{stuck_config};
    RemoteConsole::Options o;
    o.token = "t";
    o.command_time_limit = std::chrono::seconds(1);
    auto console = std::make_unique<RemoteConsole>(runtime, o);
    console->start();
    ConsoleClient a, b;
    a.connect("127.0.0.1", console->port());
    ASSERT_TRUE(a.authenticate("t").ok);
    a.send_raw("nonstop load stuck libhang_initialize.so\n");
    ASSERT_TRUE(probe::wait_until_blocked("hang"));
    // Another session gets in and works while the transaction hangs.
    b.connect("127.0.0.1", console->port());
    ASSERT_TRUE(b.authenticate("t").ok);
    EXPECT_TRUE(b.execute("set x 1").ok);
    EXPECT_TRUE(b.execute("nonstop history").ok);
    auto r = a.read_reply();
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.errorcode, "NONSTOP TIMEOUT");
    EXPECT_NE(r.body.find("'nonstop history'"), std::string::npos) << r.body;
    EXPECT_TRUE(a.execute("nonstop modules").ok);  // the same session goes on
    // A transaction queued behind the stuck one is bounded the same way.
    r = b.execute("nonstop load queued libcounter_v1.so");
    EXPECT_EQ(r.errorcode, "NONSTOP TIMEOUT");
    // stop() returns with a command waiting inside the framework.
    a.send_raw("nonstop load third libcounter_v1.so\n");
    while (runtime.queued() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    console->stop();
    EXPECT_TRUE(a.closed_by_peer());
    // The transactions finish in the background; their reports are in the history.
    probe::open_gate("hang");
    ASSERT_TRUE(nonstop::TclCommands::wait_for_background(std::chrono::seconds(60)));
    const auto history = runtime.history();
    ASSERT_EQ(history.size(), 3u);
    EXPECT_EQ(history[0].command.find("stuck") != std::string::npos, true) << history[0].command;
    for (const auto& report : history) EXPECT_TRUE(report.ok()) << report.to_string();
    EXPECT_TRUE(runtime.info("stuck"));
    EXPECT_TRUE(runtime.info("third"));
}

TEST(RemoteConsoleLog, ConnectionsAuthenticationsAndCommandsAreLogged) {
    nonstop::Runtime runtime{config()};
    std::mutex mutex;
    std::vector<std::string> lines;
    RemoteConsole::Options o;
    o.token = "t";
    o.failed_token_delay = std::chrono::milliseconds(1);
    o.log = [&](const std::string& line) {
        std::lock_guard lock(mutex);
        lines.push_back(line);
    };
    RemoteConsole console(runtime, o);
    console.start();
    std::string peer;
    {
        ConsoleClient wrong;
        wrong.connect("127.0.0.1", console.port());
        EXPECT_FALSE(wrong.authenticate("guess").ok);
        ConsoleClient c;
        c.connect("127.0.0.1", console.port());
        sockaddr_in local{};
        socklen_t length = sizeof local;
        ::getsockname(c.fd_for_test(), reinterpret_cast<sockaddr*>(&local), &length);
        peer = "127.0.0.1:" + std::to_string(ntohs(local.sin_port));
        ASSERT_TRUE(c.authenticate("t").ok);
        EXPECT_TRUE(c.execute("nonstop load logged libcounter_v1.so").ok);
        EXPECT_FALSE(c.execute("nonstop info ghost").ok);
        EXPECT_TRUE(c.execute("if {1} {\n  set a \"x\ty\"\n}").ok);
    }
    console.stop();
    std::lock_guard lock(mutex);
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    // A line: YYYY-MM-DDTHH:MM:SS.mmmZ console PEER WHAT, with WHAT beginning with `what` and
    // ending with `tail`.
    auto logged = [&](const std::string& peer_prefix, const std::string& what,
                      const std::string& tail = "") {
        for (const auto& l : lines) {
            const std::string head = " console " + peer_prefix;
            if (l.size() < 24 || l[4] != '-' || l[7] != '-' || l[10] != 'T' || l[13] != ':' ||
                l[16] != ':' || l[19] != '.' || l[23] != 'Z' || l.compare(24, head.size(), head))
                continue;
            const auto at = l.find(' ', 24 + head.size());
            if (at == std::string::npos || l.compare(at + 1, what.size(), what)) continue;
            if (tail.empty() ||
                (l.size() >= tail.size() && !l.compare(l.size() - tail.size(), tail.size(), tail)))
                return true;
        }
        return false;
    };
    EXPECT_TRUE(logged("127.0.0.1:", "authentication failed: wrong token")) << all;
    EXPECT_TRUE(logged(peer, "authenticated")) << all;
    EXPECT_TRUE(logged(peer, "command \"nonstop load logged libcounter_v1.so\" ok ", "ms")) << all;
    EXPECT_TRUE(
        logged(peer, "command \"nonstop info ghost\" error {NONSTOP UNKNOWN_MODULE ghost} ", "ms"))
        << all;
    EXPECT_TRUE(logged(peer, R"(command "if {1} {\n  set a \"x\ty\"\n}" ok )", "ms")) << all;
    EXPECT_TRUE(logged(peer, "closed")) << all;
    for (const auto& l : lines) EXPECT_EQ(l.find('\n'), std::string::npos) << l;
}

// A self-signed certificate for 127.0.0.1, made with the openssl command once per run.
class RemoteConsoleTls : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = fs::temp_directory_path() / ("nonstop-tls-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        const std::string command =
            "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
            "subjectAltName=IP:127.0.0.1 -keyout " +
            (dir_ / "key.pem").string() + " -out " + (dir_ / "cert.pem").string() +
            " > /dev/null 2>&1";
        ASSERT_EQ(std::system(command.c_str()), 0);
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }
    void SetUp() override {
        RemoteConsole::Options o;
        o.token = "secret-token";
        o.auth_time_limit = std::chrono::seconds(2);
        o.tls_certificate_file = cert();
        o.tls_key_file = (dir_ / "key.pem").string();
        console = std::make_unique<RemoteConsole>(runtime, o);
        console->start();
    }
    static std::string cert() { return (dir_ / "cert.pem").string(); }

    static fs::path dir_;
    nonstop::Runtime runtime{config()};
    std::unique_ptr<RemoteConsole> console;
};
fs::path RemoteConsoleTls::dir_;

TEST_F(RemoteConsoleTls, CommandsRunOverTls) {
    ConsoleClient c;
    c.connect_tls("127.0.0.1", console->port(), {cert()});
    ASSERT_TRUE(c.authenticate("secret-token").ok);
    auto r = c.execute("nonstop load tls libcounter_v1.so");
    EXPECT_TRUE(r.ok) << r.body;
    r = c.execute("string repeat ab 100000");
    EXPECT_EQ(r.body.size(), 200000u);
    EXPECT_EQ(runtime.info("tls")->version, "1");
}

TEST_F(RemoteConsoleTls, AWrongTokenIsRefusedOverTls) {
    ConsoleClient c;
    c.connect_tls("127.0.0.1", console->port(), {cert()});
    auto r = c.authenticate("guess");
    EXPECT_EQ(r.errorcode, "NONSTOP AUTH");
    EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(RemoteConsoleTls, APlainClientIsClosed) {
    ConsoleClient c;
    c.connect("127.0.0.1", console->port());
    c.send_raw("secret-token\nnonstop load plain libcounter_v1.so\n");
    EXPECT_THROW(c.read_reply(), nonstop::Error);
    EXPECT_FALSE(runtime.info("plain"));
}

TEST_F(RemoteConsoleTls, AnUntrustedCertificateIsRefusedByTheClient) {
    // Another self-signed certificate is not the console's.
    const std::string other = (dir_ / "other.pem").string();
    ASSERT_EQ(
        std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other "
                     "-keyout " +
                     (dir_ / "other-key.pem").string() + " -out " + other + " > /dev/null 2>&1")
                        .c_str()),
        0);
    ConsoleClient c;
    try {
        c.connect_tls("127.0.0.1", console->port(), {other});
        ADD_FAILURE() << "connected to a console it cannot verify";
    } catch (const nonstop::Error& e) {
        EXPECT_NE(std::string(e.what()).find("not trusted"), std::string::npos) << e.what();
    }
}

// Runs nonstop-shell with `options` and a one-line batch; its exit status, its output in `out`.
int run_shell(const std::string& options, const std::string& batch_line, std::string& out) {
    const fs::path dir = fs::temp_directory_path();
    const std::string stem = "nonstop-tls-shell-" + std::to_string(::getpid());
    const fs::path batch = dir / (stem + ".tcl"), output = dir / (stem + ".out");
    std::ofstream(batch) << batch_line << "\n";
    const std::string command = "NONSTOP_CONSOLE_TOKEN=secret-token " +
                                std::string(NONSTOP_SHELL_PATH) + " " + options + " " +
                                batch.string() + " > " + output.string() + " 2>&1";
    const int status = std::system(command.c_str());
    std::stringstream s;
    s << std::ifstream(output).rdbuf();
    out = s.str();
    fs::remove(batch);
    fs::remove(output);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(RemoteConsoleTls, TheShellConnectsWithTls) {
    const std::string to = "--connect 127.0.0.1:" + std::to_string(console->port());
    std::string out;
    EXPECT_EQ(run_shell(to + " --tls --tls-ca " + cert(), "Load viashell libcounter_v1.so", out), 0)
        << out;
    EXPECT_TRUE(runtime.info("viashell"));
    // On loopback --tls alone encrypts without identifying the console.
    EXPECT_EQ(run_shell(to + " --tls", "nonstop modules", out), 0) << out;
    EXPECT_NE(out.find("viashell"), std::string::npos) << out;
    // Without --tls the shell speaks plain text, which the console does not answer.
    EXPECT_EQ(run_shell(to, "nonstop modules", out), 1) << out;
    // A host other than loopback: its certificate must be verified, or skipping that said.
    EXPECT_EQ(run_shell("--connect 192.0.2.1:1 --tls", "nonstop modules", out), 2);
    EXPECT_NE(out.find("needs --tls-ca FILE"), std::string::npos) << out;
}

TEST(RemoteConsoleAddress, AnAddressOtherThanLoopbackNeedsTls) {
    nonstop::Runtime runtime{config()};
    RemoteConsole::Options o;
    o.token = "t";
    o.address = "0.0.0.0";
    RemoteConsole console(runtime, o);
    try {
        console.start();
        ADD_FAILURE() << "listened on 0.0.0.0 in plain text";
    } catch (const nonstop::Error& e) {
        EXPECT_NE(std::string(e.what()).find("only with TLS"), std::string::npos) << e.what();
    }
    o.tls_certificate_file = "/nonexistent/cert.pem";
    o.tls_key_file = "/nonexistent/key.pem";
    RemoteConsole bad(runtime, o);
    EXPECT_THROW(bad.start(), nonstop::Error);
}

// nonstop-shell --connect: prints results and fails a batch on its first error, naming the line.
class ShellConnectTest : public RemoteConsoleTest {
protected:
    int run(const std::string& batch_text, std::string& output) {
        const fs::path dir = fs::temp_directory_path();
        const std::string stem =
            "nonstop-connect-" + std::to_string(::getpid()) + "-" + std::to_string(++count_);
        const fs::path batch = dir / (stem + ".tcl"), out = dir / (stem + ".out"),
                       token = dir / (stem + ".token");
        std::ofstream(batch) << batch_text;
        std::ofstream(token) << "secret-token\n";
        const std::string command = std::string(NONSTOP_SHELL_PATH) +
                                    " --connect 127.0.0.1:" + std::to_string(console->port()) +
                                    " --token-file " + token.string() + " " + batch.string() +
                                    " > " + out.string() + " 2>&1";
        const int status = std::system(command.c_str());
        std::stringstream s;
        s << std::ifstream(out).rdbuf();
        output = s.str();
        fs::remove(batch);
        fs::remove(out);
        fs::remove(token);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    int count_ = 0;
};

TEST_F(ShellConnectTest, ABatchRunsThroughTheConsole) {
    std::string out;
    EXPECT_EQ(run("# remote batch\nLoad rb libcounter_v1.so\n\nReplace rb libcounter_v2.so\n"
                  "set v [dict get [nonstop info rb] version]\n",
                  out),
              0)
        << out;
    EXPECT_NE(out.find("\n2\n"), std::string::npos) << out;
    EXPECT_EQ(runtime.info("rb")->version, "2");
}

TEST_F(ShellConnectTest, AFailingBatchExitsNonZeroNamingTheLine) {
    std::string out;
    EXPECT_EQ(run("Load fb libcounter_v1.so\nif {1} {\n  Replace ghost libcounter_v2.so\n}\nLoad "
                  "never libcounter_v1.so\n",
                  out),
              1)
        << out;
    EXPECT_NE(out.find(":2: no module is named 'ghost'"), std::string::npos) << out;
    EXPECT_NE(out.find("NONSTOP REJECTED"), std::string::npos) << out;
    EXPECT_FALSE(runtime.info("never"));
    EXPECT_TRUE(runtime.info("fb"));
}

TEST_F(ShellConnectTest, AWrongTokenFailsTheShell) {
    const std::string command = "NONSTOP_CONSOLE_TOKEN=nope " + std::string(NONSTOP_SHELL_PATH) +
                                " --connect 127.0.0.1:" + std::to_string(console->port()) +
                                " < /dev/null > /dev/null 2>&1";
    const int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 1);
}

TEST_F(ShellConnectTest, ATokenOnTheCommandLineIsRefused) {
    const std::string out_file = ::testing::TempDir() + "/token-option.txt";
    const std::string command = std::string(NONSTOP_SHELL_PATH) +
                                " --connect 127.0.0.1:" + std::to_string(console->port()) +
                                " --token secret-token" + " < /dev/null > " + out_file + " 2>&1";
    const int status = std::system(command.c_str());
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
    std::ifstream in(out_file);
    const std::string said{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    EXPECT_NE(said.find("use --token-file or NONSTOP_CONSOLE_TOKEN"), std::string::npos) << said;
}

}  // namespace
