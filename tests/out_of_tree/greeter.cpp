// A module written against the installed contract only.
#include <nonstop/module.hpp>

#include <iostream>
#include <string>

#define STR2(x) #x
#define STR(x) STR2(x)

class Greeter : public nonstop::Module {
public:
    void handle(const nonstop::Message& m) override {
        std::cout << "greeter v" STR(GREETER_VERSION) " answered " << ++greeted_ << " to "
                  << m.sender << std::endl;
    }
    nonstop::State put_state() override { return {1, std::to_string(greeted_)}; }
    void get_state(const nonstop::State& s) override { greeted_ = std::stoi(s.bytes); }

private:
    int greeted_ = 0;
};

NONSTOP_MODULE(Greeter, "greeter", STR(GREETER_VERSION))
