// What the fleet's tests run: programs in child processes (a ZooKeeper server through
// scripts/zookeeper, nonstop-shell members and coordinators), their output in files, and waits
// on conditions.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nonstop::test {

/// Waits until `condition` holds; the deadline only guards against a hang.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds deadline = std::chrono::seconds(60));

/// A program run in a child process, its stdout and stderr appended to `log`.
class Child {
public:
    Child(const std::vector<std::string>& argv, std::string log,
          const std::vector<std::string>& env = {});
    /// Kills the child (SIGKILL) if it still runs.
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    void signal(int sig);
    /// Waits for the child's end; its exit status (128 + signal if killed).
    int wait();
    bool running();
    std::string output() const;
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
    int status_ = -1;
    std::string log_;
};

/// scripts/zookeeper: a private server on loopback.
class ZooKeeperServer {
public:
    /// Starts it (on `port` with its data in `dir` if given) and waits until it answers.
    explicit ZooKeeperServer(std::string dir = {}, int port = 0);
    /// Stops it and waits for its end (the script removes a temporary directory).
    ~ZooKeeperServer();
    const std::string& connect() const { return connect_; }
    int port() const;

private:
    std::string log_;
    std::unique_ptr<Child> child_;
    std::string connect_;
};

/// A fresh temporary directory, removed with the object.
class TempDir {
public:
    TempDir();
    ~TempDir();
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace nonstop::test
