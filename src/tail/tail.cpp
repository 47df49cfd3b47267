#include <sky_async/tail.hpp>

#include "tail/tail_engine.hpp"

#include <stdexcept>

namespace sky_async {

namespace detail {

namespace {

// The public operation: the engine's batch, each file's text split into its lines on
// the thread that completes the batch.
class tail_lines_operation final : public tail_operation {
 public:
  explicit tail_lines_operation(std::shared_ptr<tail_text_operation> texts) : texts_(std::move(texts)) {}

  void start(completion done) override {
    texts_->start([done = std::move(done)](bool cancelled, std::vector<tail_text> texts) mutable {
      std::vector<tail_result> results;
      results.reserve(texts.size());
      for (auto& text : texts) results.push_back(to_tail_result(std::move(text)));
      done(cancelled, std::move(results));
    });
  }
  void cancel() noexcept override { texts_->cancel(); }

 private:
  std::shared_ptr<tail_text_operation> texts_;
};

}  // namespace

std::shared_ptr<tail_text_operation> make_tail_text_operation(runtime_impl& rt,
                                                              std::vector<std::filesystem::path> paths,
                                                              std::size_t n, tail_options options) {
  if (options.chunk_size == 0) throw std::invalid_argument("tail_options::chunk_size must be positive");
  return std::make_shared<tail_batch>(rt, std::move(paths), n, options);
}

std::shared_ptr<tail_operation> make_tail_operation(runtime& rt, std::vector<std::filesystem::path> paths,
                                                    std::size_t n, tail_options options) {
  return std::make_shared<tail_lines_operation>(
      make_tail_text_operation(detail::impl_of(rt), std::move(paths), n, options));
}

}  // namespace detail

boost::asio::awaitable<std::vector<std::string>> read_last_n_lines(runtime& rt, std::filesystem::path path,
                                                                   std::size_t n, std::size_t chunk_size) {
  std::vector<std::filesystem::path> one{path};
  auto results = co_await async_tail_files(rt, std::move(one), n,
                                           tail_options{.chunk_size = chunk_size, .concurrency = 1},
                                           boost::asio::use_awaitable);
  tail_result& result = results.front();
  if (result.error) throw std::filesystem::filesystem_error("read_last_n_lines", path, result.error);
  co_return std::move(result.lines);
}

boost::asio::awaitable<std::vector<std::string>> read_last_n_lines(std::filesystem::path path, std::size_t n,
                                                                   std::size_t chunk_size) {
  return read_last_n_lines(runtime::global(), std::move(path), n, chunk_size);
}

}  // namespace sky_async
