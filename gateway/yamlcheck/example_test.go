package yamlcheck_test

import (
	"fmt"

	"mallgrid/gateway/yamlcheck"
)

func ExampleDecoder_Decode() {
	type bus struct {
		Name string `yaml:"name"`
		Baud int    `yaml:"baud"`
	}
	type file struct {
		Buses []bus `yaml:"buses"`
	}
	data := []byte("buses:\n  - name: b1\n    baud: fast\n  - nme: b2\n")

	r := yamlcheck.NewReport("site.yaml")
	var f file
	if (yamlcheck.Decoder{Want: "a mapping with buses"}).Decode(r, data, &f) {
		// Validation names keys; the report finds their lines.
		for i, b := range f.Buses {
			r.Need(yamlcheck.Index("buses", i)+".name", b.Name)
		}
	}
	fmt.Println(r.Err())
	// Output:
	// site.yaml:3: buses[0].baud: want an integer, got "fast"
	// site.yaml:4: buses[1].nme: unknown key (did you mean name?)
	// site.yaml:4: buses[1].name: required, not set
}
