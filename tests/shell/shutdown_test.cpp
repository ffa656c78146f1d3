// nonstop-shell stops on SIGTERM and SIGINT even with a module stuck in its handler: every
// module is removed within the runtime's shutdown limit, the stuck one abandoned and named.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "test_messages.hpp"

namespace {

struct Child {
    pid_t pid = -1;
    int out = -1;  // stdout and stderr, merged
};

// Starts nonstop-shell on a batch that loads a module, sticks its handler and waits.
Child start_shell(const std::string& batch) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return {};
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipe_fds[1], 1);
        ::dup2(pipe_fds[1], 2);
        ::close(pipe_fds[0]);
        ::execl(NONSTOP_SHELL_PATH, NONSTOP_SHELL_PATH, "--module-path", NONSTOP_TEST_MODULE_DIR,
                batch.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(pipe_fds[1]);
    return {pid, pipe_fds[0]};
}

// Reads until `marker` appears or the child closes its output; what was read.
std::string read_until(int fd, const std::string& marker) {
    std::string seen;
    char buffer[512];
    pollfd p{fd, POLLIN, 0};
    while (seen.find(marker) == std::string::npos && ::poll(&p, 1, 60'000) > 0) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n <= 0) break;
        seen.append(buffer, static_cast<std::size_t>(n));
    }
    return seen;
}

class ShutdownTest : public ::testing::TestWithParam<int> {};

TEST_P(ShutdownTest, EndsWithAStuckModuleAndNamesIt) {
    const std::string batch = ::testing::TempDir() + "/stuck.tcl";
    std::ofstream(batch) << "nonstop set_timer 0.2\n"
                         << "nonstop load m libhang_terminate.so\n"
                         << "nonstop send m " << nonstop::test::messages::kHangForever << " {}\n"
                         << "puts ready; flush stdout\n"
                         << "vwait forever\n";
    Child child = start_shell(batch);
    ASSERT_GT(child.pid, 0);
    ASSERT_NE(read_until(child.out, "ready").find("ready"), std::string::npos);
    ASSERT_EQ(::kill(child.pid, GetParam()), 0);
    const std::string said = read_until(child.out, "unserved");
    int status = 0;
    ASSERT_EQ(::waitpid(child.pid, &status, 0), child.pid);
    ::close(child.out);
    EXPECT_TRUE(WIFEXITED(status)) << said;
    EXPECT_EQ(WEXITSTATUS(status), 0) << said;
    EXPECT_NE(said.find("shutdown abandoned module 'm' version hang-terminate (still in handle())"),
              std::string::npos)
        << said;
}

INSTANTIATE_TEST_SUITE_P(Signals, ShutdownTest, ::testing::Values(SIGTERM, SIGINT),
                         [](const auto& info) {
                             return std::string(info.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

}  // namespace
