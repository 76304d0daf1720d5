// The one translation unit that compiles Boost.Asio and its OpenSSL layer
// (BOOST_ASIO_SEPARATE_COMPILATION); everything else includes only declarations.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
