// Everything public in one include.
#pragma once

#include <sky_async/error.hpp>
#include <sky_async/hash.hpp>
#include <sky_async/mounts.hpp>
#include <sky_async/process.hpp>
#include <sky_async/runtime.hpp>
#include <sky_async/scan.hpp>
#include <sky_async/stream_log.hpp>
#include <sky_async/strings.hpp>
#include <sky_async/system.hpp>
#include <sky_async/tail.hpp>
#include <sky_async/version.hpp>
