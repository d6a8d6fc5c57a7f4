package gateway

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

// parallelTests is how many of this package's parallel tests run at once
// when -parallel is not given. Most tests here start a gateway and then
// wait — on a bus's interval, an offline timeout, a grace period, fsync —
// rather than compute: about 30 s of CPU in 200 s of tests under -race.
// So they overlap well beyond the number of cores, which -parallel
// defaults to (GOMAXPROCS: 2 on the CI machine, where the package took
// 119 s at 2, 51 s at 8 and 39 s at 16). A test that starts a gateway or
// a database calls t.Parallel; one that measures timings (the benchmarks
// behind their environment variables) does not, and so runs alone, before
// the parallel ones start.
const parallelTests = 16

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		if err := flag.Set("test.parallel", strconv.Itoa(parallelTests)); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
