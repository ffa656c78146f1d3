// Loads greeter v1, greets it twice, replaces it with v2 (the count travels as state), greets
// once more and unloads it, which waits until every greeting was served. The test reads the
// module's output: "greeter v2 answered 3" proves load, replace, state and no loss.
#include <nonstop/runtime.hpp>

#include <iostream>

int main() {
    nonstop::Config config;
    config.module_path = {MODULE_DIR};
    nonstop::Runtime runtime(config);
    auto report = runtime.load("greeter", "libgreeter_v1.so");
    std::cout << report.to_string();
    if (!report.ok()) return 1;
    runtime.send("greeter", nonstop::Message{1, 1, {}, "one"});
    runtime.send("greeter", nonstop::Message{1, 1, {}, "two"});
    report = runtime.replace("greeter", "libgreeter_v2.so");
    std::cout << report.to_string();
    if (!report.ok() || report.targets.at(0).new_version != "2") return 1;
    runtime.send("greeter", nonstop::Message{1, 1, {}, "three"});
    report = runtime.unload("greeter");
    std::cout << report.to_string();
    return report.ok() && runtime.libraries().empty() ? 0 : 1;
}
