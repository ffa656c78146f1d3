#include "test_support.hpp"

#include <cstdlib>

#include <fstream>
#include <thread>

namespace nonstop::test {

std::string library(const std::string& target) {
    return std::string(NONSTOP_TEST_MODULE_DIR) + "/lib" + target + ".so";
}

bool mapped(const std::string& fragment) {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);)
        if (line.find(fragment) != std::string::npos) return true;
    return false;
}

std::vector<probe::Event> events_of(const std::string& module) {
    std::vector<probe::Event> out;
    for (auto& e : probe::events())
        if (e.module == module) out.push_back(e);
    return out;
}

void send_numbered(Runtime& rt, const std::string& to, const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i)
        ASSERT_TRUE(rt.send(to, Message{messages::kRecord, 1, {}, prefix + std::to_string(i)}))
            << to;
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > end) return condition();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

void RuntimeTest::SetUp() {
    probe::clear();
    config.module_path = {NONSTOP_TEST_MODULE_DIR};
    // The suites run a second time on kept module threads (tests/CMakeLists.txt).
    if (const char* keep = std::getenv("NONSTOP_TEST_THREAD_KEEP_MS"))
        config.module_thread_keep = std::chrono::milliseconds(std::atol(keep));
}

void RuntimeTest::TearDown() { runtime_.reset(); }

Runtime& RuntimeTest::rt() {
    if (!runtime_) runtime_ = std::make_unique<Runtime>(config);
    return *runtime_;
}

}  // namespace nonstop::test
