package web

import (
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
)

// compressor compresses an answer for a client that accepts gzip or zstd
// (gzhttp: zstd first when both are accepted), once it is 1 KiB or more.
// An event stream is compressed too: each event is flushed through the
// compressor as it is written. It holds no state of its own between
// requests but a pool of writers.
var compressor = func() func(http.Handler) http.HandlerFunc {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(1024), gzhttp.CompressionLevel(compressionLevel))
	if err != nil { // fixed options: only a changed library could refuse them
		panic("web: gzhttp options: " + err.Error())
	}
	return wrap
}()

// compressionLevel is gzip's level for the API: the list of 2,000 meters
// (docs/BENCHMARKS.md) is compressed once per request. With this library
// level 7 is the first that brings it well under 200 KB (188 KB against
// 200 KB at 6), for 10 ms of a core against 6; level 9 takes 110 ms.
const compressionLevel = 7

// compressed wraps the handler of pattern in the compressor where that
// pays and is safe: the JSON API and the static files. Not the pages and
// not the session endpoint: they carry the CSRF token, and a secret
// compressed beside what a request put into the same answer can be read
// from the answer's size (BREACH).
func compressed(pattern string, h http.Handler) http.Handler {
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case path == "/api/v1/session":
		return h
	case strings.HasPrefix(path, "/api/"), strings.HasPrefix(path, "/static/"), strings.HasPrefix(path, "/words/"):
		return compressor(h)
	}
	return h
}
