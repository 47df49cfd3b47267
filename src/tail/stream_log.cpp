#include <sky_async/stream_log.hpp>

#include "tail/stream_log_engine.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/system/system_error.hpp>

#include <stdexcept>
#include <tuple>

namespace sky_async {

namespace detail {

std::shared_ptr<log_stream_engine> open_log_stream(runtime& rt, const std::filesystem::path& path,
                                                   const stream_log_options& options) {
  if (options.max_chunk_bytes == 0) {
    throw std::invalid_argument("stream_log_options::max_chunk_bytes must be positive");
  }
  auto engine = std::make_shared<log_stream_engine>(impl_of(rt), path, options);
  engine->open();
  return engine;
}

std::shared_ptr<log_chunk_operation> make_next_chunk_operation(
    const std::shared_ptr<log_stream_engine>& engine) {
  return std::make_shared<next_chunk_request>(engine);
}

}  // namespace detail

log_stream::log_stream(runtime& rt, const std::filesystem::path& path, stream_log_options options)
    : engine_(detail::open_log_stream(rt, path, options)) {}

log_stream::log_stream(const std::filesystem::path& path, stream_log_options options)
    : log_stream(runtime::global(), path, options) {}

log_stream::~log_stream() {
  if (engine_) {
    engine_->close_by_user();
    engine_->wait_closed();
  }
}

log_stream& log_stream::operator=(log_stream&& other) noexcept {
  if (this != &other) {
    if (engine_) {
      engine_->close_by_user();
      engine_->wait_closed();
    }
    engine_ = std::move(other.engine_);
  }
  return *this;
}

boost::asio::awaitable<std::optional<std::string>> log_stream::next_chunk() {
  auto [ec, chunk] = co_await async_next_chunk(boost::asio::as_tuple(boost::asio::use_awaitable));
  if (ec == boost::asio::error::eof) co_return std::nullopt;
  if (ec) throw boost::system::system_error(ec, "stream_log");
  co_return std::move(chunk);
}

void log_stream::finish() {
  if (engine_) engine_->finish();
}

void log_stream::close() noexcept {
  if (engine_) engine_->close_by_user();
}

}  // namespace sky_async
