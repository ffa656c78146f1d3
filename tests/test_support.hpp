// Shared helpers for the framework's GoogleTest suites.
#pragma once

#include <gtest/gtest.h>
#include <nonstop/runtime.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "probe.hpp"
#include "test_messages.hpp"

namespace nonstop::test {

/// Absolute path of a test module library by target name ("counter_v1").
std::string library(const std::string& target);
/// True while a file whose path contains `fragment` is mapped into this process.
bool mapped(const std::string& fragment);
/// The probe events one module recorded, in order.
std::vector<probe::Event> events_of(const std::string& module);
/// Sends `count` kRecord messages with payloads prefix0, prefix1, ...
void send_numbered(Runtime& rt, const std::string& to, const std::string& prefix, int count);
/// Waits until `condition` holds, for what a test observes only after the event it waited for
/// (a module records a message before the framework counts it handled, say). The deadline only
/// guards against a hang; reaching it is a failure, not a pace.
bool wait_until(const std::function<bool()>& condition,
                std::chrono::milliseconds deadline = std::chrono::seconds(30));

class RuntimeTest : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;
    /// Builds the runtime; tests may change `config` first.
    Runtime& rt();
    Config config;

private:
    std::unique_ptr<Runtime> runtime_;
};

}  // namespace nonstop::test
