#include "cache/redis/resp.h"

#include <hiredis/hiredis.h>

#include <vector>

namespace pglane::cache::redis {

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) {
        out.elements.push_back(convert(r->element[i]));
      }
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

}  // namespace

void format_command(std::span<const std::string_view> args, std::string& out) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n =
      redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n > 0 && cmd != nullptr) {
    out.append(cmd, static_cast<size_t>(n));
  }
  redisFreeCommand(cmd);
}

ReplyReader::ReplyReader() : reader_(redisReaderCreate()) {}

ReplyReader::~ReplyReader() {
  redisReaderFree(reader_);
}

void ReplyReader::feed(std::string_view bytes) {
  if (failed_ || bytes.empty()) {
    return;
  }
  if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) {
    failed_ = true;
    error_ = reader_->errstr;
  }
}

std::optional<Reply> ReplyReader::next() {
  if (failed_) {
    return std::nullopt;
  }
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    failed_ = true;
    error_ = reader_->errstr;
    return std::nullopt;
  }
  if (raw == nullptr) {
    return std::nullopt;
  }
  Reply r = convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return r;
}

}  // namespace pglane::cache::redis
