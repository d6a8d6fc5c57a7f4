// Package configs holds the example and demo configurations. The demo one is
// embedded so that `mallgrid demo` (and `make run`) needs no file at all.
package configs

import _ "embed"

// Demo is configs/demo.yaml: the simulated mall.
//
//go:embed demo.yaml
var Demo []byte

// DemoName is the file name Demo's problems are reported under.
const DemoName = "configs/demo.yaml"
