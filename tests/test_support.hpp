// Shared helpers for the framework's GoogleTest suites.
#pragma once

#include <gtest/gtest.h>
#include <nonstop/runtime.hpp>

#include <memory>
#include <string>
#include <vector>

#include "probe.hpp"

namespace nonstop::test {

/// Absolute path of a test module library by target name ("counter_v1").
std::string library(const std::string& target);
/// True while a file whose path contains `fragment` is mapped into this process.
bool mapped(const std::string& fragment);
/// The probe events one module recorded, in order.
std::vector<probe::Event> events_of(const std::string& module);
/// Sends `count` messages of type 1 with payloads prefix0, prefix1, ...
void send_numbered(Runtime& rt, const std::string& to, const std::string& prefix, int count);

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
