// The version a router module library is built as (ROUTER_VERSION, set per library by
// modules/CMakeLists.txt), as a number and as the string NONSTOP_MODULE declares.
#pragma once

#ifndef ROUTER_VERSION
#error ROUTER_VERSION must be defined
#endif
#define ROUTER_STR2(x) #x
#define ROUTER_STR(x) ROUTER_STR2(x)
