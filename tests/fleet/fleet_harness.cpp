#include "fleet_harness.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace nonstop::test {

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
}

Child::Child(const std::vector<std::string>& argv, std::string log,
             const std::vector<std::string>& env)
    : log_(std::move(log)) {
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            ::close(fd);
        }
        const int null = ::open("/dev/null", O_RDONLY);
        if (null >= 0) ::dup2(null, 0);
        for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        std::_Exit(127);
    }
}

Child::~Child() {
    if (running()) signal(SIGKILL);
    wait();
}

void Child::signal(int sig) {
    if (status_ < 0) ::kill(pid_, sig);
}

int Child::wait() {
    if (status_ >= 0) return status_;
    int s = 0;
    while (::waitpid(pid_, &s, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
    return status_;
}

bool Child::running() {
    if (status_ >= 0) return false;
    int s = 0;
    if (::waitpid(pid_, &s, WNOHANG) == pid_) {
        status_ = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
        return false;
    }
    return true;
}

std::string Child::output() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

ZooKeeperServer::ZooKeeperServer(std::string dir, int port) {
    static int started = 0;
    log_ =
        std::filesystem::temp_directory_path() / ("nonstop-fleet-zk-" + std::to_string(::getpid()) +
                                                  "-" + std::to_string(++started) + ".log");
    std::filesystem::remove(log_);
    std::vector<std::string> argv = {NONSTOP_SCRIPTS_DIR "/zookeeper"};
    if (!dir.empty()) argv.insert(argv.end(), {"--dir", dir});
    if (port) argv.insert(argv.end(), {"--port", std::to_string(port)});
    child_ = std::make_unique<Child>(argv, log_);
    const bool up = eventually(
        [&] {
            const auto out = child_->output();
            const auto at = out.find("zookeeper 127.0.0.1:");
            if (at == std::string::npos) return !child_->running();
            const auto end = out.find('\n', at);
            if (end == std::string::npos) return false;
            connect_ = out.substr(at + 10, end - at - 10);
            return true;
        },
        std::chrono::seconds(90));
    if (!up || connect_.empty())
        throw std::runtime_error("ZooKeeper did not start: " + child_->output());
}

ZooKeeperServer::~ZooKeeperServer() {
    child_->signal(SIGTERM);
    child_->wait();
    std::filesystem::remove(log_);
}

int ZooKeeperServer::port() const { return std::stoi(connect_.substr(connect_.rfind(':') + 1)); }

TempDir::TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "nonstop-fleet.XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

}  // namespace nonstop::test
