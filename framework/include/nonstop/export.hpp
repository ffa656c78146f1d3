// Which symbols libnonstop exports. The library is built with hidden visibility; only what a
// host or a module library links against carries NONSTOP_API.
#pragma once

#define NONSTOP_API __attribute__((visibility("default")))
/// A member of an exported class that only the library itself calls.
#define NONSTOP_LOCAL __attribute__((visibility("hidden")))
